// The MTA-STS cache's file (see mta_sts_cache_file.hpp).
#include "policy/mta_sts_cache_file.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/fsutil.hpp"

namespace mailward::policy {
namespace {

using Clock = std::chrono::system_clock;

Clock::time_point from_ms(std::int64_t v) {
    return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(v)));
}

}  // namespace

std::map<std::string, CachedMtaStsPolicy> MtaStsCacheFile::load() {
    std::map<std::string, CachedMtaStsPolicy> out;
    std::error_code ec;
    if (!std::filesystem::exists(path_, ec)) return out;
    auto text = common::read_file(path_);
    if (!text) {
        spdlog::warn("mta-sts: cannot read the policy cache {}: {}; starting empty", path_.string(),
                     text.error().message());
        return out;
    }
    auto doc = nlohmann::json::parse(*text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("policies") || !doc["policies"].is_object()) {
        spdlog::warn("mta-sts: the policy cache {} is not valid; starting empty", path_.string());
        return out;
    }
    const auto now = Clock::now();
    for (const auto& [domain, e] : doc["policies"].items()) {
        if (!e.is_object() || !e.contains("id") || !e["id"].is_string() || !e.contains("policy") ||
            !e["policy"].is_string() || !e.contains("fetched_at") || !e["fetched_at"].is_number_integer() ||
            !e.contains("expires") || !e["expires"].is_number_integer()) {
            spdlog::warn("mta-sts: policy cache entry for '{}' is malformed; dropped", domain);
            continue;
        }
        std::string detail;
        auto policy = parse_mta_sts_policy(e["policy"].get<std::string>(), detail);
        if (!policy) {
            spdlog::warn("mta-sts: policy cache entry for '{}': {}; dropped", domain, detail);
            continue;
        }
        CachedMtaStsPolicy c;
        c.policy = *policy;
        c.id = e["id"].get<std::string>();
        c.fetched_at = from_ms(e["fetched_at"].get<std::int64_t>());
        c.expires = from_ms(e["expires"].get<std::int64_t>());
        // Never longer than the policy's own max_age from its fetch, whatever the file says.
        c.expires = std::min(c.expires, c.fetched_at + std::chrono::duration_cast<Clock::duration>(c.policy.max_age));
        if (c.expires <= now) continue;
        out[domain] = std::move(c);
    }
    if (!out.empty()) spdlog::info("mta-sts: {} cached policies loaded from {}", out.size(), path_.string());
    return out;
}

}  // namespace mailward::policy
