// This file is not part of FerretDB: devstack/build.py adds it to a copy of FerretDB v1.24's
// internal/handler/sjson package and routes Unmarshal through devstackUnmarshalOrElse.
//
// FerretDB's SQLite backend stores every document as JSON with its schema in "$s", and decodes
// each field with a new encoding/json Decoder: that was two thirds of the CPU time of a large
// find. The fast path below scans the stored JSON once, reuses the parsed schema of documents
// of the same shape, and decodes the common field types directly. Anything it is not certain
// about (escaped strings, unusual numbers, binary, ObjectIDs, regexes,
// timestamps) goes to FerretDB's own decoder, so the documents it returns are the ones
// FerretDB would return. With FERRETDB_DEVSTACK_VERIFY_DECODER=1 every document is decoded
// both ways and a difference stops the process (the test suite runs it so).

package sjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/FerretDB/FerretDB/internal/types"
)

// devstackVerify decodes every document with both decoders and compares the results.
var devstackVerify = os.Getenv("FERRETDB_DEVSTACK_VERIFY_DECODER") == "1"

// devstackSchemaCacheSize bounds the parsed schemas kept; documents of one collection
// share a few shapes, so the cache is only ever cleared by data with very many shapes.
const devstackSchemaCacheSize = 4096

var (
	devstackSchemasM sync.Mutex
	devstackSchemas  = make(map[string]*schema)
)

// devstackUnmarshalOrElse decodes data with the fast path, or with original where the fast
// path declines.
func devstackUnmarshalOrElse(data []byte, original func([]byte) (*types.Document, error)) (*types.Document, error) {
	doc, ok := devstackUnmarshal(data)
	if !ok {
		return original(data)
	}

	if devstackVerify {
		want, err := original(data)
		if err != nil {
			panic(fmt.Sprintf("devstack sjson: fast path decoded a document FerretDB refuses (%s): %s", err, data))
		}

		got, errGot := Marshal(doc)
		exp, errExp := Marshal(want)

		if errGot != nil || errExp != nil || !bytes.Equal(got, exp) {
			panic(fmt.Sprintf("devstack sjson: fast path differs for %s:\n got %s\nwant %s", data, got, exp))
		}
	}

	return doc, nil
}

// devstackUnmarshal is the fast path of Unmarshal; false means "use FerretDB's decoder".
func devstackUnmarshal(data []byte) (*types.Document, bool) {
	fields, ok := devstackScanObject(data)
	if !ok || len(fields) == 0 || fields[0].key != "$s" {
		return nil, false
	}

	sch, ok := devstackSchema(fields[0].raw)
	if !ok || len(sch.Keys) != len(fields)-1 {
		return nil, false
	}

	return devstackDocument(fields[1:], sch)
}

func devstackDocument(fields []devstackField, sch *schema) (*types.Document, bool) {
	// Built in one go: Set per field checks every earlier field, quadratic in the fields.
	pairs := make([]any, 0, 2*len(fields))

	for i, field := range fields {
		// Marshal writes the fields in the order of the schema's keys, each once.
		if field.key != sch.Keys[i] {
			return nil, false
		}

		value, ok := devstackValue(field.raw, sch.Properties[field.key])
		if !ok {
			return nil, false
		}

		pairs = append(pairs, field.key, value)
	}

	doc, err := types.NewDocument(pairs...)
	if err != nil {
		return nil, false
	}

	return doc, true
}

func devstackValue(raw []byte, sch *elem) (any, bool) {
	if string(raw) == "null" {
		return types.Null, true
	}

	if sch == nil {
		return nil, false
	}

	switch sch.Type {
	case elemTypeString:
		return devstackString(raw)
	case elemTypeBool:
		switch string(raw) {
		case "true":
			return true, true
		case "false":
			return false, true
		}

		return nil, false
	case elemTypeDouble:
		if !devstackPlainNumber(raw) {
			return nil, false
		}

		f, err := strconv.ParseFloat(string(raw), 64)

		return f, err == nil
	case elemTypeInt:
		if !devstackPlainInteger(raw) {
			return nil, false
		}

		i, err := strconv.ParseInt(string(raw), 10, 32)

		return int32(i), err == nil
	case elemTypeLong:
		if !devstackPlainInteger(raw) {
			return nil, false
		}

		i, err := strconv.ParseInt(string(raw), 10, 64)

		return i, err == nil
	case elemTypeDate:
		if !devstackPlainInteger(raw) {
			return nil, false
		}

		ms, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return nil, false
		}

		// As dateTimeType.UnmarshalJSON does.
		return time.UnixMilli(ms), true
	case elemTypeObject:
		fields, ok := devstackScanObject(raw)
		if !ok {
			return nil, false
		}

		// As documentType.UnmarshalJSONWithSchema: an empty document needs no schema.
		if len(fields) == 0 {
			return new(types.Document), true
		}

		if sch.Schema == nil || len(fields) != len(sch.Schema.Keys) {
			return nil, false
		}

		return devstackDocument(fields, sch.Schema)
	case elemTypeArray:
		items, ok := devstackScanArray(raw)
		if !ok || len(items) != len(sch.Items) {
			return nil, false
		}

		arr := types.MakeArray(len(items))

		for i, item := range items {
			value, ok := devstackValue(item, sch.Items[i])
			if !ok {
				return nil, false
			}

			arr.Append(value)
		}

		return arr, true
	}

	return nil, false
}

// devstackString decodes a JSON string without escapes; anything else declines.
func devstackString(raw []byte) (any, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}

	body := raw[1 : len(raw)-1]
	for _, c := range body {
		if c == '\\' || c == '"' || c < 0x20 {
			return nil, false
		}
	}

	if !utf8.Valid(body) {
		return nil, false
	}

	return string(body), true
}

// devstackPlainInteger: an optional minus and digits, as Marshal writes integers.
func devstackPlainInteger(raw []byte) bool {
	digits := raw
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}

	if len(digits) == 0 || len(digits) > 19 || (len(digits) > 1 && digits[0] == '0') {
		return false
	}

	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}

	return true
}

// devstackPlainNumber: the characters of a JSON number; ParseFloat checks the rest, and a
// value JSON cannot hold (out of range) makes ParseFloat fail, which declines.
func devstackPlainNumber(raw []byte) bool {
	if len(raw) == 0 {
		return false
	}

	for _, c := range raw {
		switch {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
		default:
			return false
		}
	}

	return true
}

func devstackSchema(raw []byte) (*schema, bool) {
	devstackSchemasM.Lock()
	sch, ok := devstackSchemas[string(raw)]
	devstackSchemasM.Unlock()

	if ok {
		return sch, true
	}

	sch = new(schema)

	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()

	if err := dec.Decode(sch); err != nil || dec.More() {
		return nil, false
	}

	devstackSchemasM.Lock()
	if len(devstackSchemas) >= devstackSchemaCacheSize {
		devstackSchemas = make(map[string]*schema)
	}
	devstackSchemas[string(raw)] = sch
	devstackSchemasM.Unlock()

	return sch, true
}

type devstackField struct {
	key string
	raw []byte
}

// devstackScanObject splits a JSON object into its fields (raw values), or declines.
func devstackScanObject(data []byte) ([]devstackField, bool) {
	i := devstackSkipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}

	fields := make([]devstackField, 0, 16)

	i = devstackSkipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return fields, devstackSkipSpace(data, i+1) == len(data)
	}

	for {
		if i >= len(data) || data[i] != '"' {
			return nil, false
		}

		end := bytes.IndexByte(data[i+1:], '"')
		if end < 0 {
			return nil, false
		}

		key := data[i+1 : i+1+end]
		if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) {
			return nil, false
		}

		i = devstackSkipSpace(data, i+end+2)
		if i >= len(data) || data[i] != ':' {
			return nil, false
		}

		start := devstackSkipSpace(data, i+1)

		stop, ok := devstackSkipValue(data, start)
		if !ok {
			return nil, false
		}

		fields = append(fields, devstackField{key: string(key), raw: data[start:stop]})

		next, done, ok := devstackAfterItem(data, stop, '}')
		if !ok {
			return nil, false
		}

		if done {
			return fields, true
		}

		i = next
	}
}

// devstackScanArray splits a JSON array into its raw items, or declines.
func devstackScanArray(data []byte) ([][]byte, bool) {
	i := devstackSkipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return nil, false
	}

	var items [][]byte

	i = devstackSkipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return items, devstackSkipSpace(data, i+1) == len(data)
	}

	for {
		stop, ok := devstackSkipValue(data, i)
		if !ok {
			return nil, false
		}

		items = append(items, data[i:stop])

		next, done, ok := devstackAfterItem(data, stop, ']')
		if !ok {
			return nil, false
		}

		if done {
			return items, true
		}

		i = next
	}
}

// devstackAfterItem reads what follows an item of an object or an array: the index of the
// next item, or done when closer ends the container, which must also end the data.
func devstackAfterItem(data []byte, stop int, closer byte) (next int, done, ok bool) {
	i := devstackSkipSpace(data, stop)
	if i >= len(data) {
		return 0, false, false
	}

	switch data[i] {
	case ',':
		return devstackSkipSpace(data, i+1), false, true
	case closer:
		return 0, true, devstackSkipSpace(data, i+1) == len(data)
	}

	return 0, false, false
}

// devstackSkipValue returns the index just past the JSON value starting at i.
func devstackSkipValue(data []byte, i int) (int, bool) {
	if i >= len(data) {
		return 0, false
	}

	switch data[i] {
	case '"':
		return devstackSkipString(data, i)
	case '{', '[':
		depth := 0

		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				end, ok := devstackSkipString(data, j)
				if !ok {
					return 0, false
				}

				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}

		return 0, false
	default:
		j := i
		for j < len(data) {
			switch data[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return j, j > i
			}
			j++
		}

		return j, j > i
	}
}

// devstackSkipString returns the index just past the JSON string starting at i.
func devstackSkipString(data []byte, i int) (int, bool) {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}

	return 0, false
}

func devstackSkipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}

	return i
}
