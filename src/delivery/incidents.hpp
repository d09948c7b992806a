// Incident tracking for the delivery engine's downgrade defence: a possible STARTTLS downgrade or a
// certificate change that persists is recorded (and warned about, and re-probed) once per quiet
// period per domain, kind and address, not at every retry; and the incidents metric
// (mailward_policy_incidents_total, by kind).
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>

#include "store/policy_store.hpp"

namespace mailward::delivery {

class IncidentTracker {
  public:
    using Clock = std::chrono::system_clock;
    static constexpr Clock::duration kDefaultQuiet = std::chrono::minutes(15);
    explicit IncidentTracker(Clock::duration quiet = kDefaultQuiet) : quiet_(quiet) {}

    // True when no incident of i's domain, kind and address was seen within the quiet period
    // before i.at (and remembers i); entries older than the quiet period are forgotten.
    bool is_new(const store::PolicyIncident& i);

  private:
    Clock::duration quiet_;
    std::map<std::string, Clock::time_point> recent_;  // "domain|kind|address" -> when
};

// Counts one recorded incident of kind in mailward_policy_incidents_total.
void count_incident(std::string_view kind);

}  // namespace mailward::delivery
