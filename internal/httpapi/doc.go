// Package httpapi owns sluice's one HTTP listener: /healthz (the process is alive), /readyz (every
// registered readiness check passes), /metrics (Prometheus), and the routes other packages mount on it
// (the SQL API, the UI). It knows nothing of what the checks or mounted handlers do.
//
// TLS (cert and key files) and authentication (a bearer token or basic-auth users) are configured here
// and cover every route except /healthz and /readyz, which orchestrators probe without credentials.
package httpapi
