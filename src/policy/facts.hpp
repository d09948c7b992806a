// The recorded facts about a destination, as plan() takes them, built from what each caller has:
// the delivery engine from what it read for this delivery (store, route, TLSA answers, MTA-STS
// cache, preload list, probe), `policy simulate` from the store's rows, the MTA-STS cache file,
// the preload file and the delivery log. Both go through here so that the same records give the
// same plan (tests/unit/policy/plan_crosscheck_test.cpp). Pure, except load_destination() (store).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "common/result.hpp"
#include "config/config.hpp"
#include "policy/learned.hpp"
#include "policy/plan.hpp"
#include "policy/preload.hpp"
#include "store/policy_store.hpp"

namespace mailward::policy {

// What the store knows of a destination: the learned policy and the admin override (the active
// one; else an expired one, which still deserves a mention among the reasons).
struct StoredDestination {
    std::optional<LearnedPolicy> learned;
    std::optional<Override> override;
};
// Blocks (SQLite): run it where blocking is allowed.
Result<StoredDestination> load_destination(store::PolicyStore& s, const std::string& domain,
                                           std::chrono::system_clock::time_point now);

// What the delivery engine read for one destination before planning.
struct EngineReading {
    std::string domain;
    StoredDestination stored;  // after any probe of this delivery
    MtaStsFact mta_sts;        // status "" when MTA-STS was not consulted
    const PreloadList* preload = nullptr;
    RouteFacts route;
    bool probe_ran = false;
};
DestinationFacts engine_facts(const config::Config& cfg, const EngineReading& r,
                              std::chrono::system_clock::time_point now);

// What `policy simulate` has for one destination (no DNS, no probe).
struct SimulationRecord {
    std::string domain;
    std::optional<store::LearnedPolicy> learned;  // the store's row
    std::optional<store::Override> override;      // the store's row for the domain, if any
    MtaStsFact mta_sts;                           // from the MTA-STS cache file, if any
    const PreloadList* preload = nullptr;
    std::map<std::string, tls::Level> observed;  // delivery log: newest level per MX host
    std::optional<RouteFacts> route;             // nullopt: not resolved (the CLI does not)
};
// Errc::corrupt when the learned row's level is not on the ladder (the override row is skipped).
Result<DestinationFacts> simulation_facts(const config::Config& cfg, const SimulationRecord& r,
                                          std::chrono::system_clock::time_point now);

}  // namespace mailward::policy
