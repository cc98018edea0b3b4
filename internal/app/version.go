package app

import "runtime/debug"

// Version is set at build time with -ldflags "-X github.com/sluice-project/sluice/internal/app.Version=v1.2.3";
// otherwise it comes from the module build info.
var Version = ""

// VersionString returns the version, VCS revision and Go version of this binary.
func VersionString() string {
	v, rev, dirty, goV := Version, "", false, ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		goV = bi.GoVersion
		if v == "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if v == "" || v == "(devel)" {
		v = "dev"
	}
	out := "sluice " + v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		out += " (" + rev
		if dirty {
			out += ", modified"
		}
		out += ")"
	}
	return out + " " + goV
}
