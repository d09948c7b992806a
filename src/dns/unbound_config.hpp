// Sets up a libunbound context from [dns] (docs/design.md): forwarders or /etc/resolv.conf,
// special-use names sent to the forwarders, and the trust anchors (a configured file, else the
// root's). The configuration is trusted (validated by config/); file and server errors are
// reported in `error`.
#pragma once

#include <string>

struct ub_ctx;
namespace mailward::config {
struct DnsConfig;
}

namespace mailward::dns {

// False (and error set) when an option, forwarder or anchor file is refused.
bool configure(ub_ctx* ctx, const config::DnsConfig& cfg, std::string& error);

}  // namespace mailward::dns
