// This file is not part of FerretDB: devstack/build.py adds it to a copy of FerretDB v1.24's
// internal/backends/sqlite package and makes collection.Query call pushdownWhere, so that the
// filters the exporters send reach SQLite's expression indexes instead of a full table scan.

package sqlite

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
)

// pushdownMaxValues keeps an $in list below SQLite's limit of bound parameters (32766).
const pushdownMaxValues = 30000

// pushdownField is a top-level field whose name can be written into a JSON path as is.
var pushdownField = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// pushdownWhere returns a WHERE clause that selects a superset of the documents matching
// filter, using the same expressions as the indexes createIndexes makes
// (`_ferretdb_sjson->'field'`), so SQLite answers with an index search.
//
// The handler applies the whole filter to every returned document afterwards, so the clause
// only has to be a superset: it covers top-level fields compared with a string (or, for _id,
// an ObjectID) by equality or by $in, and ignores every other condition. Documents whose field
// holds an array are always kept (MongoDB matches `{f: "x"}` against an array containing "x");
// `->` renders an array as JSON text starting with "[", a range the same index answers.
func pushdownWhere(filter *types.Document) (string, []any) {
	if filter == nil {
		return "", nil
	}

	var conditions []string
	var args []any

	for _, key := range filter.Keys() {
		if !pushdownField.MatchString(key) {
			continue
		}

		value, err := filter.Get(key)
		if err != nil {
			continue
		}

		values, ok := pushdownValues(key, value)
		if !ok {
			continue
		}

		expr := fmt.Sprintf("%s->'%s'", metadata.DefaultColumn, key)

		placeholders := strings.TrimSuffix(strings.Repeat("?, ", len(values)), ", ")
		condition := fmt.Sprintf("%s IN (%s)", expr, placeholders)

		// _id can never be an array.
		if key != "_id" {
			condition = fmt.Sprintf(`(%s OR (%s >= '[' AND %s < '\'))`, condition, expr, expr)
		}

		conditions = append(conditions, condition)
		args = append(args, values...)
	}

	if len(conditions) == 0 {
		return "", nil
	}

	return " WHERE " + strings.Join(conditions, " AND "), args
}

// pushdownValues returns the encoded values a field must equal (one for equality, several
// for $in), or false when the condition is of another kind.
func pushdownValues(key string, value any) ([]any, bool) {
	if encoded, ok := pushdownScalar(key, value); ok {
		return []any{encoded}, true
	}

	doc, ok := value.(*types.Document)
	if !ok || doc.Len() != 1 {
		return nil, false
	}

	in, err := doc.Get("$in")
	if err != nil {
		return nil, false
	}

	list, ok := in.(*types.Array)
	if !ok || list.Len() == 0 || list.Len() > pushdownMaxValues {
		return nil, false
	}

	values := make([]any, 0, list.Len())

	for i := 0; i < list.Len(); i++ {
		item, err := list.Get(i)
		if err != nil {
			return nil, false
		}

		encoded, ok := pushdownScalar(key, item)
		if !ok {
			return nil, false
		}

		values = append(values, encoded)
	}

	return values, true
}

// pushdownScalar encodes a value exactly as sjson stores it in a document, or returns false
// for types whose stored form could differ from the one compared with.
func pushdownScalar(key string, value any) (string, bool) {
	switch value.(type) {
	case string:
	case types.ObjectID:
		if key != "_id" {
			return "", false
		}
	default:
		return "", false
	}

	encoded, err := sjson.MarshalSingleValue(value)
	if err != nil {
		return "", false
	}

	return string(encoded), true
}
