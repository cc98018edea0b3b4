package pgwire

import "crypto/tls"

type tlsState = tls.ConnectionState
