// Internal to mailward_config: endpoint and network parsers that say what is wrong, for the config
// reader's messages. The public wrappers in config.hpp return only an error code.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace mailward::config::detail {

// On failure returns nullopt and sets why to a short phrase, e.g. "port 70000 is out of range".
std::optional<Endpoint> parse_endpoint(std::string_view text, unsigned short default_port, std::string& why);
std::optional<Network> parse_network(std::string_view text, std::string& why);

}  // namespace mailward::config::detail
