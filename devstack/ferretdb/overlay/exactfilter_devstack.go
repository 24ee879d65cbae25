// This file is not part of FerretDB: devstack/build.py adds it to a copy of FerretDB v1.24's
// internal/handler package, whose find then filters through devstackFindFilter.

package handler

import (
	"fmt"
	"os"

	"github.com/FerretDB/FerretDB/internal/handler/common"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
)

var devstackVerifyFilter = os.Getenv("FERRETDB_DEVSTACK_VERIFY_DECODER") == "1"

// devstackExactMaxValues must equal pushdownMaxValues of the SQLite backend's overlay: up to
// that many values, a filter on _id alone is pushed down whole.
const devstackExactMaxValues = 30000

// devstackFindFilter replaces the handler's filter for `{_id: "s"}` and
// `{_id: {$in: ["s", ...]}}` by a check of the _id's type: the SQLite backend's pushdown
// returns exactly the documents whose _id is stored as one of those JSON strings (an _id is
// never an array), which are the documents with that string _id and those with an ObjectID
// of that hex (sjson stores an ObjectID as its hex string). Matching every document against
// every value of a large $in was the costliest step of a join's look-up after decoding.
// With FERRETDB_DEVSTACK_VERIFY_DECODER=1 the full filter runs too, and a document it drops
// that the type check kept stops the process.
func devstackFindFilter(iter types.DocumentsIterator, closer *iterator.MultiCloser, filter *types.Document) types.DocumentsIterator {
	if !devstackExactIDFilter(filter) {
		return common.FilterIterator(iter, closer, filter)
	}

	return &devstackStringIDIterator{iter: iter, filter: filter}
}

func devstackExactIDFilter(filter *types.Document) bool {
	if filter == nil || filter.Len() != 1 {
		return false
	}

	value, err := filter.Get("_id")
	if err != nil {
		return false
	}

	if devstackIDScalar(value) {
		return true
	}

	doc, ok := value.(*types.Document)
	if !ok || doc.Len() != 1 {
		return false
	}

	in, err := doc.Get("$in")
	if err != nil {
		return false
	}

	list, ok := in.(*types.Array)
	if !ok || list.Len() == 0 || list.Len() > devstackExactMaxValues {
		return false
	}

	for i := 0; i < list.Len(); i++ {
		item, err := list.Get(i)
		if err != nil || !devstackIDScalar(item) {
			return false
		}
	}

	return true
}

func devstackIDScalar(value any) bool {
	_, ok := value.(string)
	return ok
}

// devstackStringIDIterator passes on the documents whose _id is a string.
type devstackStringIDIterator struct {
	iter   types.DocumentsIterator
	filter *types.Document
}

func (it *devstackStringIDIterator) Next() (struct{}, *types.Document, error) {
	for {
		unused, doc, err := it.iter.Next()
		if err != nil {
			return unused, doc, err
		}

		id, _ := doc.Get("_id")
		_, keep := id.(string)

		if devstackVerifyFilter {
			matches, err := common.FilterDocument(doc, it.filter)
			if err != nil || matches != keep {
				panic(fmt.Sprintf("devstack filter: the _id check says %v, the filter %v (%v): %v", keep, matches, err, doc))
			}
		}

		if keep {
			return unused, doc, nil
		}
	}
}

func (it *devstackStringIDIterator) Close() {
	it.iter.Close()
}
