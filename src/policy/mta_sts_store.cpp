// The MTA-STS cache over the store (see mta_sts_store.hpp).
#include "policy/mta_sts_store.hpp"

#include <spdlog/spdlog.h>

#include "common/domain.hpp"
#include "policy/mta_sts_cache_file.hpp"
#include "store/policy_store.hpp"

namespace mailward::policy {
namespace {

using Clock = std::chrono::system_clock;

// A stored row as the cache may use it at now, or nullopt (logged when damaged).
std::optional<CachedMtaStsPolicy> usable(const store::StoredMtaSts& row, Clock::time_point now) {
    if (!common::DomainName::parse(row.domain, {.final_dot = false})) {
        spdlog::warn("mta-sts: stored policy for '{}': not a domain name; not used", row.domain);
        return std::nullopt;
    }
    std::string detail;
    auto policy = parse_mta_sts_policy(row.policy, detail);
    if (!policy) {
        spdlog::warn("mta-sts: stored policy for {}: {}; not used", row.domain, detail);
        return std::nullopt;
    }
    CachedMtaStsPolicy c;
    c.policy = *policy;
    c.id = row.id;
    c.fetched_at = row.fetched_at;
    // Never longer than the policy's own max_age from its fetch, whatever the row says.
    c.expires = std::min(row.expires, row.fetched_at + std::chrono::duration_cast<Clock::duration>(c.policy.max_age));
    if (c.expires <= now) return std::nullopt;
    return c;
}

}  // namespace

std::string mta_sts_policy_text(const MtaStsPolicy& p) {
    std::string t = "version: STSv1\nmode: " + std::string(to_string(p.mode)) +
                    "\nmax_age: " + std::to_string(p.max_age.count()) + "\n";
    for (const auto& mx : p.mx) t += "mx: " + mx + "\n";
    return t;
}

std::map<std::string, CachedMtaStsPolicy> MtaStsStore::load() {
    std::map<std::string, CachedMtaStsPolicy> out;
    const auto now = Clock::now();
    auto rows = ps_.mta_sts_all();
    if (!rows) {
        spdlog::warn("mta-sts: cannot read the stored policies: {}; starting empty", rows.error().message());
        return out;
    }
    for (const auto& row : *rows)
        if (auto c = usable(row, now)) out[row.domain] = std::move(*c);
    if (!out.empty()) spdlog::info("mta-sts: {} cached policies loaded from the store", out.size());
    return out;
}

std::optional<CachedMtaStsPolicy> MtaStsStore::find(const std::string& domain) {
    auto row = ps_.mta_sts(domain);
    if (!row) {
        spdlog::warn("mta-sts: cannot read the stored policy of {}: {}", domain, row.error().message());
        return std::nullopt;
    }
    if (!row->has_value()) return std::nullopt;
    return usable(**row, Clock::now());
}

void MtaStsStore::save(const std::string& domain, const CachedMtaStsPolicy& entry) {
    store::StoredMtaSts row{domain, entry.id, mta_sts_policy_text(entry.policy), entry.fetched_at, entry.expires};
    if (auto r = ps_.put_mta_sts(row); !r)
        spdlog::warn("mta-sts: cannot store the policy of {}: {} (kept in memory)", domain, r.error().message());
}

std::size_t import_mta_sts_file(const std::filesystem::path& file, MtaStsCacheStore& to) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) return 0;
    const auto entries = MtaStsCacheFile(file).load();
    for (const auto& [domain, entry] : entries) to.save(domain, entry);
    auto done = file;
    done += ".imported";
    std::filesystem::rename(file, done, ec);
    if (ec) {
        spdlog::warn("mta-sts: imported {} policies from {} but cannot rename it: {}", entries.size(), file.string(),
                     ec.message());
    } else {
        spdlog::info("mta-sts: imported {} policies from {} into the store (the file is now {})", entries.size(),
                     file.string(), done.filename().string());
    }
    return entries.size();
}

}  // namespace mailward::policy
