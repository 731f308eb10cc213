#include "server/api/admission.h"

#include "gtest/gtest.h"

namespace elexirion::api {
namespace {

TEST(AdmissionTest, RejectsBeyondTheLimitAndReleasesSlots) {
  Admission admission(2, 1);
  Admission::Ticket a, b, c;
  EXPECT_TRUE(admission.AdmitUnary(&a).ok());
  EXPECT_TRUE(admission.AdmitUnary(&b).ok());
  absl::Status full = admission.AdmitUnary(&c);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(admission.inflight_unary(), 2);
  a.Release();
  EXPECT_EQ(admission.inflight_unary(), 1);
  EXPECT_TRUE(admission.AdmitUnary(&c).ok());
}

TEST(AdmissionTest, StreamsHaveTheirOwnLimit) {
  Admission admission(1, 1);
  Admission::Ticket unary, s1, s2;
  EXPECT_TRUE(admission.AdmitUnary(&unary).ok());
  EXPECT_TRUE(admission.AdmitStream(&s1).ok());
  EXPECT_EQ(admission.AdmitStream(&s2).code(), absl::StatusCode::kResourceExhausted);
}

TEST(AdmissionTest, TicketReleasesOnDestruction) {
  Admission admission(1, 1);
  {
    Admission::Ticket t;
    EXPECT_TRUE(admission.AdmitUnary(&t).ok());
  }
  EXPECT_EQ(admission.inflight_unary(), 0);
}

TEST(AdmissionTest, DrainingRefusesWithUnavailable) {
  Admission admission(10, 10);
  admission.StartDraining();
  Admission::Ticket t;
  EXPECT_EQ(admission.AdmitUnary(&t).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(admission.AdmitStream(&t).code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace elexirion::api
