// This file is not part of FerretDB: devstack/build.py adds it to a copy of FerretDB v1.24's
// internal/util/fsql package, whose query wrappers then log through devstackDebug.

package fsql

import (
	"context"
	"log/slog"
)

// devstackDebug logs a statement only when debug logging is on. The wrappers called
// l.With(args).DebugContext(...) for every statement, which formats and quotes every
// argument (whole documents, for an insert) before the level check throws the line away:
// over a quarter of the time of loading a dataset.
func devstackDebug(ctx context.Context, l *slog.Logger, fields []any, msg string) {
	if l.Enabled(ctx, slog.LevelDebug) {
		l.With(fields...).DebugContext(ctx, msg)
	}
}
