// Package config is how every component declares, documents, loads and validates its settings.
//
// A component owns one typed struct, with a Default… function and a Validate method beside it. Each
// field carries a yaml tag (its key) and a doc tag (its meaning, unit and what zero means); secrets carry
// secret:"true" and are never printed. That one declaration feeds everything here:
//
//   - Load: YAML file (unknown keys fail, with file:line), then environment variables
//     (SLUICE_<PATH>, e.g. SLUICE_MQTT_BROKER for mqtt.broker), then Validate on every component, with
//     all errors collected and each naming its key, the problem, the fix and the file:line it came from.
//   - Document: the commented YAML that `sluice config` prints (defaults, meanings, variable names).
//
// The package knows no component: the application's top-level struct (internal/app) nests them.
package config
