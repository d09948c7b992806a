// The preload list's parser (see preload.hpp). Input is an administrator's file: every problem is
// reported with the offending key, nothing is half-loaded.
#include "policy/preload.hpp"

#include <nlohmann/json.hpp>

#include "common/domain.hpp"
#include "common/fsutil.hpp"
#include "common/timefmt.hpp"

namespace mailward::policy {

std::optional<tls::Level> PreloadList::level_for(std::string_view domain,
                                                 std::chrono::system_clock::time_point now) const {
    if (expired(now)) return std::nullopt;
    auto it = domains.find(std::string(domain));
    if (it == domains.end()) return std::nullopt;
    return it->second;
}

std::optional<PreloadList> parse_preload(std::string_view json, std::string& error) {
    auto doc = nlohmann::json::parse(json, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        error = "not a JSON object";
        return std::nullopt;
    }
    PreloadList list;
    if (auto v = doc.find("version"); v != doc.end() && (!v->is_number_integer() || v->get<int>() != 1)) {
        error = "version: only 1 is understood";
        return std::nullopt;
    }
    if (auto e = doc.find("expires"); e != doc.end()) {
        auto t = e->is_string() ? common::parse_iso8601(e->get<std::string>()) : std::nullopt;
        if (!t) {
            error = "expires: not an ISO 8601 date or date-time (2027-06-30 or 2027-06-30T00:00:00Z)";
            return std::nullopt;
        }
        list.expires = t;
    }
    auto ds = doc.find("domains");
    if (ds == doc.end() || !ds->is_object()) {
        error = "domains: missing or not an object";
        return std::nullopt;
    }
    for (const auto& [key, value] : ds->items()) {
        auto domain = common::DomainName::parse(key, {.final_dot = false});  // RFC 1035 2.3.1
        if (!domain) {
            error = "domains.\"" + key + "\": not a domain name";
            return std::nullopt;
        }
        auto level = value.is_string() ? tls::parse_level(value.get<std::string>()) : std::nullopt;
        if (!level) {
            error = "domains.\"" + key + "\": level must be one of none, may, encrypt, verify, dane";
            return std::nullopt;
        }
        list.domains[domain->str()] = *level;
    }
    return list;
}

std::optional<PreloadList> load_preload(const std::filesystem::path& file, std::string& error) {
    auto text = common::read_file(file);
    if (!text) {
        error = file.string() + ": cannot read: " + text.error().message();
        return std::nullopt;
    }
    auto list = parse_preload(*text, error);
    if (!list) {
        error = file.string() + ": " + error;
        return std::nullopt;
    }
    list->source = file.string();
    return list;
}

}  // namespace mailward::policy
