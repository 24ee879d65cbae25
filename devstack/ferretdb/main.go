// Command ferretdb runs an embedded FerretDB v1 (MongoDB wire protocol over SQLite) for the
// local stack.
//
// It exists because `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.0` does not work
// here: the module proxy refuses the version list and the module zip lacks
// build/version/version.txt, so that binary panics at start. The embeddable package has neither
// problem. devstack/build.py builds this into .cache/bin/ferretdb.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// sqlitePragmas are added to every database file FerretDB opens. A large page cache and
// memory-mapped reads keep index look-ups off the read system call; synchronous=normal in WAL
// mode loses nothing when the process is killed (only an OS crash can lose the last commits).
// The whole file is mapped, up to 64 GiB (the driver's own cap, 2 GiB, is raised by the
// devstack's patch set): pages past the map are read by a system call into a cache each
// connection keeps for itself.
var sqlitePragmas = url.Values{"_pragma": {
	"cache_size(-1048576)",
	"mmap_size(68719476736)",
	"synchronous(normal)",
}}.Encode()

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	dir := flag.String("sqlite-dir", "data", "directory holding one SQLite file per database")
	logLevel := flag.String("log-level", "error", "debug, info, warn or error")
	// FerretDB allocates several objects per document field it decodes; collecting garbage at
	// the default 100% growth took a sixth of a large find's CPU time. Memory is cheap here.
	gcPercent := flag.Int("gc-percent", 400, "Go garbage collector target (GOGC)")
	flag.Parse()
	debug.SetGCPercent(*gcPercent)

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		log.Fatal(err)
	}

	absDir, err := filepath.Abs(*dir)
	if err != nil {
		log.Fatal(err)
	}
	if err = os.MkdirAll(absDir, 0o755); err != nil {
		log.Fatal(err)
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *listen},
		Handler:  "sqlite",
		// The SQLite handler wants a URI naming a directory, with the trailing slash.
		SQLiteURL: "file:" + absDir + "/?" + sqlitePragmas,
		// Error by default: at warn level FerretDB dumps every error reply in full, including
		// the endSessions that every pymongo client sends on close and FerretDB lacks.
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// Restore default signal handling once shutdown starts, so a second signal kills the
		// process even if an open client connection keeps Run waiting.
		<-ctx.Done()
		stop()
	}()

	log.Printf("listening on %s, data in %s", *listen, absDir)
	if err = f.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
	log.Print("stopped")
}
