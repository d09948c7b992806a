// The error category for mailward::common::Errc.
#include "common/result.hpp"

namespace mailward::common {
namespace {

class Category final : public boost::system::error_category {
  public:
    const char* name() const noexcept override { return "mailward"; }
    std::string message(int ev) const override {
        switch (static_cast<Errc>(ev)) {
            case Errc::ok: return "success";
            case Errc::invalid_argument: return "invalid argument";
            case Errc::not_found: return "not found";
            case Errc::already_exists: return "already exists";
            case Errc::io_error: return "I/O error";
            case Errc::storage_error: return "storage error";
            case Errc::timeout: return "timed out";
            case Errc::too_large: return "too large";
            case Errc::shutting_down: return "shutting down";
            case Errc::corrupt: return "corrupt data";
            case Errc::unsupported: return "unsupported";
            case Errc::storage_full: return "no space left or read-only file system";
        }
        return "unknown mailward error";
    }
};

}  // namespace

const boost::system::error_category& error_category() noexcept {
    static const Category category;
    return category;
}

}  // namespace mailward::common
