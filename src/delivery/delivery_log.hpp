// The structured delivery log: one JSON object per line per recipient per attempt, in
// <data_dir>/delivery.log: queue id, recipient, MX host and address, TLS facts, the required level
// and why, the result and the remote reply. Operators grep it; `policy simulate` (later) reads it.
#pragma once

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>

namespace mailward::delivery {

class DeliveryLog {
  public:
    DeliveryLog() = default;
    ~DeliveryLog();
    DeliveryLog(const DeliveryLog&) = delete;
    DeliveryLog& operator=(const DeliveryLog&) = delete;

    // Appends to path (created 0600). False if it cannot be opened (lines then go to the error log).
    bool open(const std::filesystem::path& path);
    // Writes one line (a serialized JSON object without newline) and flushes it.
    void write(const std::string& json_line);

  private:
    std::mutex mu_;
    std::FILE* f_ = nullptr;
};

}  // namespace mailward::delivery
