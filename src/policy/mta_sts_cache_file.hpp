// The MTA-STS cache's file (RFC 8461 section 5.1: policies outlive a restart): one JSON document in
// data_dir, written atomically (temporary file + rename) after each change, read at start. Each
// policy is kept as its policy text and parsed again on load with the same parser as a fetched
// body, so a damaged file cannot inject anything a policy host could not; entries that are expired,
// malformed or about invalid domains are dropped, and a corrupt file is logged and ignored.
#pragma once

#include <filesystem>

#include "policy/mta_sts_fetch.hpp"

namespace mailward::policy {

class MtaStsCacheFile final : public MtaStsCacheStore {
  public:
    explicit MtaStsCacheFile(std::filesystem::path path) : path_(std::move(path)) {}
    std::map<std::string, CachedMtaStsPolicy> load() override;
    void save(const std::map<std::string, CachedMtaStsPolicy>& entries) override;

    // The policy text of p (version, mode, max_age, mx lines), as parse_mta_sts_policy reads it.
    static std::string policy_text(const MtaStsPolicy& p);

  private:
    std::filesystem::path path_;
};

}  // namespace mailward::policy
