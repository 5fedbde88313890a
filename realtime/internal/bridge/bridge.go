// Package bridge hands the core's unexported entry points to the packages
// built on it (wire, the plug-in API for transports, and topics) without
// making them part of package realtime's API, which users read.
//
// Package realtime sets Core when it is initialised, to a value whose
// methods are those entry points; package wire and package topics each
// assert it, once, to an interface listing the methods they use. Nothing
// else sets it.
package bridge

// Core is set by package realtime before any other package can run.
var Core any
