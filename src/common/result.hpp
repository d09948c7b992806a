// Result<T> and the project's common error enum. Data-path code returns Result<T>; exceptions are
// reserved for startup and config parsing (docs/design.md, "Conventions"). Each library may add
// its own error enum with its own category; this one holds the errors shared across libraries.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <string>
#include <system_error>

namespace mailward {

template <class T>
using Result = boost::system::result<T>;

using boost::system::error_code;

namespace common {

enum class Errc {
    ok = 0,
    invalid_argument = 1,  // a value failed validation
    not_found,             // no such object (queue id, user, ...)
    already_exists,        // unique key taken
    io_error,              // file or storage I/O failed
    storage_error,         // database reported an error
    timeout,               // an operation ran out of time
    too_large,             // a size limit was exceeded
    shutting_down,         // the component is stopping and takes no new work
    corrupt,               // stored data failed a consistency check
    unsupported,           // feature or value not supported
    storage_full,          // the file system is full or read-only: nothing can be written now
};

const boost::system::error_category& error_category() noexcept;

inline error_code make_error_code(Errc e) noexcept { return {static_cast<int>(e), error_category()}; }

}  // namespace common
}  // namespace mailward

namespace boost::system {
template <>
struct is_error_code_enum<mailward::common::Errc> : std::true_type {};
}  // namespace boost::system
