// Writing the counters to a file on a timer: see metrics_file.hpp.
#include "common/metrics_file.hpp"

#include "common/fsutil.hpp"
#include "common/metrics.hpp"

namespace mailward::common::metrics {

void FileWriter::start() { schedule(); }

void FileWriter::write() const { (void)write_file_atomic(path_, render(), 0644); }

void FileWriter::schedule() {
    timer_.expires_after(interval_);
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        write();
        schedule();
    });
}

}  // namespace mailward::common::metrics
