#include "skiff/cli/http_client.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "fake_daemon.h"

namespace skiff::cli {
namespace {

TEST(ParseHost, UnixUrlsAndBarePaths) {
  EXPECT_EQ(parseHost("unix:///run/skiff/netd.sock").value(), "/run/skiff/netd.sock");
  EXPECT_EQ(parseHost("/tmp/x.sock").value(), "/tmp/x.sock");
  EXPECT_EQ(parseHost(kDefaultHost).value(), "/run/skiff/netd.sock");
}

TEST(ParseHost, RejectsOtherSchemesAndRelativePaths) {
  auto tcp = parseHost("tcp://127.0.0.1:2375");
  ASSERT_FALSE(tcp.ok());
  EXPECT_NE(tcp.error().message.find("tcp://127.0.0.1:2375"), std::string::npos);
  EXPECT_FALSE(parseHost("unix://relative.sock").ok());
  EXPECT_FALSE(parseHost("").ok());
  EXPECT_FALSE(parseHost("unix:///" + std::string(200, 'x')).ok());
}

TEST(BuildHttpRequest, PostCarriesJsonHeadersAndBody) {
  EXPECT_EQ(buildHttpRequest("POST", "/v1/swarm/init", "{}"),
            "POST /v1/swarm/init HTTP/1.1\r\nHost: skiff\r\nUser-Agent: skiff-cli/0.1.0\r\n"
            "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
  EXPECT_EQ(buildHttpRequest("GET", "/v1/info", ""),
            "GET /v1/info HTTP/1.1\r\nHost: skiff\r\nUser-Agent: skiff-cli/0.1.0\r\nConnection: close\r\n\r\n");
}

TEST(ParseHttpResponse, StatusHeadersAndContentLength) {
  auto r = parseHttpResponse(
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n"
      "{\"message\":\"x\"}trailing-garbage");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->reason, "Service Unavailable");
  EXPECT_EQ(r->headers.at("content-type"), "application/json");
  EXPECT_EQ(r->body, "{\"message\":\"x\"}");
}

TEST(ParseHttpResponse, DechunksBody) {
  auto r = parseHttpResponse(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4\r\n[1,2\r\nA;ext=1\r\n,3,4,5,6,7\r\n1\r\n]\r\n0\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->body, "[1,2,3,4,5,6,7]");
}

TEST(ParseHttpResponse, RejectsBrokenInput) {
  EXPECT_FALSE(parseHttpResponse("").ok());
  EXPECT_FALSE(parseHttpResponse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").ok());
  EXPECT_FALSE(parseHttpResponse("SSH-2.0-OpenSSH\r\n\r\n").ok());
  EXPECT_FALSE(parseHttpResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").ok());
  EXPECT_FALSE(parseHttpResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab").ok());
}

TEST(EscapePath, KeepsImageRefsReadable) {
  EXPECT_EQ(escapePath("s3ich4n/get-started:pt02"), "s3ich4n/get-started:pt02");
  EXPECT_EQ(escapePath("a b?c#"), "a%20b%3Fc%23");
}

using fake::FakeDaemon;

TEST(HttpClient, SendsRequestAndParsesCannedResponse) {
  FakeDaemon daemon(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
      "1a\r\n{\"messages\": [\"Creating ne\r\n1e\r\ntwork getstartedlab_webnet\"]}\n\r\n0\r\n\r\n");
  HttpClient client(daemon.path());
  auto response = client.request("POST", "/v1/stacks/getstartedlab", R"({"stack":{}})");
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "{\"messages\": [\"Creating network getstartedlab_webnet\"]}\n");
  const std::string sent = daemon.received();
  EXPECT_EQ(sent.rfind("POST /v1/stacks/getstartedlab HTTP/1.1\r\n", 0), 0u) << sent;
  EXPECT_NE(sent.find("\r\nContent-Length: 12\r\n"), std::string::npos);
  EXPECT_NE(sent.find("\r\nConnection: close\r\n"), std::string::npos);
  EXPECT_EQ(sent.substr(sent.size() - 12), R"({"stack":{}})");
}

TEST(HttpClient, ErrorStatusIsAResponseNotAFailure) {
  FakeDaemon daemon("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 25\r\n\r\n{\"message\":\"not a swarm\"}");
  auto response = HttpClient(daemon.path()).request("GET", "/v1/info");
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(response->status, 503);
  EXPECT_EQ(response->body, "{\"message\":\"not a swarm\"}");
}

TEST(HttpClient, MissingSocketIsConnectError) {
  char tmpl[] = "/tmp/skiff-cli-test-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  auto response = HttpClient(dir + "/absent.sock").request("GET", "/v1/info");
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(response.ok());
  EXPECT_TRUE(HttpClient::isConnectError(response.error())) << response.error().message;
  EXPECT_EQ(response.error().code, ENOENT);
}

}  // namespace
}  // namespace skiff::cli
