// A configuration reload (SIGHUP, docs/operations.md "Reload and shutdown"): the new file is
// loaded and validated like at start; the keys that cannot change in a running process (listen
// addresses, data_dir, the store, [server] user, the DNS resolver, the escrow service...) keep
// their running values and are named, so that serve can warn about them in one line.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace mailward::config {

struct Reloaded {
    Config config;                     // the new configuration, restart-only keys at their running values
    std::vector<std::string> restart;  // restart-only keys whose value changed ("submission.listen", ...)
    std::vector<std::string> changed;  // every other key that changed ("policy.domains", ...)
};

// The new configuration next as it applies to a process running with running: next, with every
// restart-only key set back to running's value (and named in restart).
Reloaded merge_reload(const Config& running, Config next);

// Loads running.source again (config::load, without requiring the certificate, key and trust
// anchor files to be readable: serve runs as [server] user by then) and merges it (merge_reload). Errc::unsupported
// when running has no source (started without -c; error says so); a bad file: error as load() says it.
Result<Reloaded> reload(const Config& running, ConfigError& error);

}  // namespace mailward::config
