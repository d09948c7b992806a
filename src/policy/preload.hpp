// The preload list: a JSON file of recipient domains and the TLS level each is known to require,
// shipped or curated ahead of any contact (in the spirit of the STARTTLS Everywhere list). One of
// the sources decide() takes the strictest of (docs/design.md). Format:
//   {"version": 1, "expires": "2027-06-30T00:00:00Z", "domains": {"example.org": "verify", ...}}
// "expires" is optional; an expired list is ignored (and said so in the reasons), never trusted
// blindly. Domains are lower-cased; levels are none|may|encrypt|verify|dane.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "tls/level.hpp"

namespace mailward::policy {

struct PreloadList {
    std::map<std::string, tls::Level> domains;
    std::optional<std::chrono::system_clock::time_point> expires;
    std::string source;  // the file, for reasons and logs

    // The entry for domain while the list is valid at now.
    std::optional<tls::Level> level_for(std::string_view domain, std::chrono::system_clock::time_point now) const;
    bool expired(std::chrono::system_clock::time_point now) const { return expires && now >= *expires; }
};

// Parses the JSON text; on failure error says what and where ("domains.\"x\": unknown level ...").
std::optional<PreloadList> parse_preload(std::string_view json, std::string& error);
std::optional<PreloadList> load_preload(const std::filesystem::path& file, std::string& error);

}  // namespace mailward::policy
