// Where the MTA-STS cache keeps its policies (RFC 8461 section 5.1: a policy outlives a restart, or
// an attacker gets a window at every restart): the store's mta_sts_policies rows, so that every
// node on a shared PostgreSQL uses a policy any one of them fetched (docs/design.md "PostgreSQL
// store"). Each row is kept as its policy text and parsed again on every read with the parser of a
// fetched body, so a damaged or forged row cannot say anything a policy host could not; rows that
// are expired, unparsable or about invalid domains are not used, and their expiry is never later
// than the policy's own max_age after its fetch. All calls block (the cache runs them on a pool).
#pragma once

#include <filesystem>

#include "policy/mta_sts_fetch.hpp"

namespace mailward::store {
class PolicyStore;
}

namespace mailward::policy {

class MtaStsStore final : public MtaStsCacheStore {
  public:
    explicit MtaStsStore(store::PolicyStore& ps) : ps_(ps) {}
    std::map<std::string, CachedMtaStsPolicy> load() override;
    std::optional<CachedMtaStsPolicy> find(const std::string& domain) override;
    void save(const std::string& domain, const CachedMtaStsPolicy& entry) override;

  private:
    store::PolicyStore& ps_;
};

// The policy text of p (version, mode, max_age, mx lines), as parse_mta_sts_policy reads it.
std::string mta_sts_policy_text(const MtaStsPolicy& p);

// Builds before this one kept the policies in data_dir/mta-sts-cache.json (mta_sts_cache_file.hpp).
// If that file exists: its usable entries go to to (a later fetch already stored wins), and the
// file is renamed to mta-sts-cache.json.imported. Returns how many entries were imported; a file
// that cannot be read or renamed is logged and left where it is.
std::size_t import_mta_sts_file(const std::filesystem::path& file, MtaStsCacheStore& to);

}  // namespace mailward::policy
