// This file is not part of FerretDB: devstack/build.py adds it to a copy of FerretDB v1.24's
// internal/util/resource package, whose Track and Untrack then return at once.

package resource

// devstackTrackResources turns off the leak tracker: it records a pprof sample with a stack
// trace and sets a finalizer for every iterator, which is about a sixth of the CPU time of
// a large find and a good part of its garbage.
const devstackTrackResources = false
