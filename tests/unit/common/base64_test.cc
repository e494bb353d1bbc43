#include "skiff/common/base64.h"

#include <gtest/gtest.h>

namespace skiff {
namespace {

TEST(Base64, EncodesTheRfc4648Vectors) {
  EXPECT_EQ(base64Encode(""), "");
  EXPECT_EQ(base64Encode("f"), "Zg==");
  EXPECT_EQ(base64Encode("fo"), "Zm8=");
  EXPECT_EQ(base64Encode("foo"), "Zm9v");
  EXPECT_EQ(base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64Encode(std::string("\x00\xff\xfe", 3)), "AP/+");
}

TEST(Base64, DecodesWhatItEncodesAndEveryByteValue) {
  EXPECT_EQ(base64Decode("Zm9vYmE=").value(), "fooba");
  EXPECT_EQ(base64Decode("Zg==").value(), "f");
  std::string all;
  for (int i = 0; i < 256; i++) all += static_cast<char>(i);
  for (size_t n = 0; n <= all.size(); n += 37)
    EXPECT_EQ(base64Decode(base64Encode(all.substr(0, n))).value(), all.substr(0, n)) << n;
}

TEST(Base64, RefusesWhatIsNotCanonical) {
  EXPECT_FALSE(base64Decode("Zg="));         // length
  EXPECT_FALSE(base64Decode("Zg=a"));        // padding in the middle
  EXPECT_FALSE(base64Decode("Z!=="));        // alphabet
  EXPECT_FALSE(base64Decode("Zh=="));        // bits after the padding
  EXPECT_FALSE(base64Decode("Zm9v\nYg=="));  // no line breaks
  EXPECT_FALSE(base64Decode("===="));
}

}  // namespace
}  // namespace skiff
