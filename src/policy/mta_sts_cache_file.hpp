// The MTA-STS cache's file of earlier builds: one JSON document in data_dir (mta-sts-cache.json).
// Policies now live in the store (mta_sts_store.hpp); this reader is what imports such a file once.
// Each policy was kept as its policy text and is parsed again with the same parser as a fetched
// body, so a damaged file cannot inject anything a policy host could not; entries that are
// expired, malformed or about invalid domains are dropped, and a corrupt file is logged and ignored.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "policy/mta_sts_fetch.hpp"

namespace mailward::policy {

class MtaStsCacheFile {
  public:
    explicit MtaStsCacheFile(std::filesystem::path path) : path_(std::move(path)) {}
    std::map<std::string, CachedMtaStsPolicy> load();

  private:
    std::filesystem::path path_;
};

}  // namespace mailward::policy
