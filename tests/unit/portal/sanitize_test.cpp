#include "portal/sanitize.hpp"
#include <gtest/gtest.h>
TEST(Sanitize, Placeholder) { EXPECT_EQ(mailward::portal::sanitize_html("<b>x</b>").html, "<b>x</b>"); }
