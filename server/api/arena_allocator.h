// Request and response of a unary callback RPC allocated on one protobuf Arena, freed in one
// go when the RPC is done. For RecordExecutions a request is 100s of records, each with three
// Structs: without an arena, parsing it costs a malloc per string and map entry and
// destroying it a free for each, a large share of the server's CPU per record.
#pragma once

#include "google/protobuf/arena.h"
#include "grpcpp/support/message_allocator.h"

namespace elexirion::api {

// Arena blocks for one telemetry request: the first holds a typical batch record, growth is
// capped so a 1000-record batch does not keep one huge block.
inline google::protobuf::ArenaOptions RequestArenaOptions() {
  google::protobuf::ArenaOptions options;
  options.start_block_size = 16 << 10;
  options.max_block_size = 1 << 20;
  return options;
}

template <typename Request, typename Response>
class ArenaMessageAllocator final : public grpc::MessageAllocator<Request, Response> {
 public:
  grpc::MessageHolder<Request, Response>* AllocateMessages() override { return new Holder(); }

 private:
  class Holder final : public grpc::MessageHolder<Request, Response> {
   public:
    Holder() : arena_(RequestArenaOptions()) {
      this->set_request(google::protobuf::Arena::CreateMessage<Request>(&arena_));
      this->set_response(google::protobuf::Arena::CreateMessage<Response>(&arena_));
    }
    void Release() override { delete this; }

   private:
    google::protobuf::Arena arena_;
  };
};

}  // namespace elexirion::api
