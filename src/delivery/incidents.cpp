// Incidents recorded once per quiet period, and their metric: see incidents.hpp.
#include "delivery/incidents.hpp"

#include <iterator>

#include "common/metrics.hpp"

namespace mailward::delivery {

bool IncidentTracker::is_new(const store::PolicyIncident& i) {
    const std::string key = i.domain + "|" + i.kind + "|" + i.address;
    for (auto it = recent_.begin(); it != recent_.end();) {
        it = i.at - it->second >= quiet_ ? recent_.erase(it) : std::next(it);
    }
    return recent_.emplace(key, i.at).second;
}

void count_incident(std::string_view kind) {
    common::metrics::inc("mailward_policy_incidents_total",
                         "Possible STARTTLS downgrade attacks and certificate changes recorded, by kind.", "kind",
                         kind);
}

}  // namespace mailward::delivery
