// This file is not part of FerretDB: devstack/build.py adds it to a copy of FerretDB v1.24's
// internal/handler/common package and routes ProjectDocument through devstackProjectOrElse.
//
// ProjectDocument deep-copies every document (twice for an inclusion projection) before it
// picks the fields, a fifth of FerretDB's CPU time during a join's look-ups. The fast path
// handles the projection the service sends, an inclusion of top-level fields (`{f: 1}` or
// `{f: true}`), by taking the
// fields from the freshly decoded document in its order; anything else (nested or positional
// paths, exclusions, expressions) goes to FerretDB's own code. With
// FERRETDB_DEVSTACK_VERIFY_DECODER=1 both are run and a difference stops the process.

package common

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
)

var devstackVerifyProjection = os.Getenv("FERRETDB_DEVSTACK_VERIFY_DECODER") == "1"

type devstackProjector func(doc, projection, filter *types.Document, inclusion bool) (*types.Document, error)

func devstackProjectOrElse(doc, projection, filter *types.Document, inclusion bool, original devstackProjector) (*types.Document, error) {
	projected, ok := devstackProject(doc, projection, inclusion)
	if !ok {
		return original(doc, projection, filter, inclusion)
	}

	if devstackVerifyProjection {
		want, err := original(doc, projection, filter, inclusion)
		if err != nil {
			panic(fmt.Sprintf("devstack projection: fast path projected what FerretDB refuses: %s", err))
		}

		got, errGot := sjson.Marshal(projected)
		exp, errExp := sjson.Marshal(want)

		if errGot != nil || errExp != nil || !bytes.Equal(got, exp) || projected.RecordID() != want.RecordID() {
			panic(fmt.Sprintf("devstack projection: fast path differs:\n got %s\nwant %s", got, exp))
		}
	}

	return projected, nil
}

func devstackProject(doc, projection *types.Document, inclusion bool) (*types.Document, bool) {
	if !inclusion || !doc.Has("_id") {
		return nil, false
	}

	keepID := true
	wanted := make(map[string]struct{}, projection.Len())

	for _, key := range projection.Keys() {
		value, err := projection.Get(key)
		if err != nil {
			return nil, false
		}

		var include bool

		switch value := value.(type) {
		case bool:
			include = value
		case int32:
			include = value != 0
		case int64:
			include = value != 0
		case float64:
			include = value != 0
		default:
			return nil, false
		}

		if key == "_id" {
			keepID = include
			continue
		}

		if !include || key == "" || strings.ContainsAny(key, ".$") {
			return nil, false
		}

		wanted[key] = struct{}{}
	}

	projected := types.MakeDocument(len(wanted) + 1)

	for _, key := range doc.Keys() {
		if key == "_id" {
			if !keepID {
				continue
			}
		} else if _, ok := wanted[key]; !ok {
			continue
		}

		value, err := doc.Get(key)
		if err != nil {
			return nil, false
		}

		projected.Set(key, value)
	}

	projected.SetRecordID(doc.RecordID())

	return projected, true
}
