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

// devstackFindFilter skips the handler's filter for `{_id: v}` and `{_id: {$in: [...]}}` of
// strings or ObjectIDs: the SQLite backend's pushdown answers those exactly (an _id is never
// an array), and matching every document against every value of a large $in was the
// costliest step of a join's look-up after decoding. With FERRETDB_DEVSTACK_VERIFY_DECODER=1
// the filter runs anyway and a document it would drop stops the process.
func devstackFindFilter(iter types.DocumentsIterator, closer *iterator.MultiCloser, filter *types.Document) types.DocumentsIterator {
	if !devstackExactIDFilter(filter) {
		return common.FilterIterator(iter, closer, filter)
	}

	if devstackVerifyFilter {
		return &devstackCheckedIterator{iter: iter, filter: filter}
	}

	return iter
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
	switch value.(type) {
	case string, types.ObjectID:
		return true
	}

	return false
}

// devstackCheckedIterator passes documents through and panics on one the filter refuses.
type devstackCheckedIterator struct {
	iter   types.DocumentsIterator
	filter *types.Document
}

func (it *devstackCheckedIterator) Next() (struct{}, *types.Document, error) {
	unused, doc, err := it.iter.Next()
	if err != nil {
		return unused, doc, err
	}

	matches, err := common.FilterDocument(doc, it.filter)
	if err != nil || !matches {
		panic(fmt.Sprintf("devstack filter: pushdown returned a document the filter refuses (%v): %v", err, doc))
	}

	return unused, doc, nil
}

func (it *devstackCheckedIterator) Close() {
	it.iter.Close()
}
