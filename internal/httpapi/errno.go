package httpapi

import "syscall"

var errAddrInUse = syscall.EADDRINUSE
