// The single translation unit that compiles Boost.Beast (BOOST_BEAST_SEPARATE_COMPILATION); only
// the portal uses Beast.
#include <boost/beast/src.hpp>
