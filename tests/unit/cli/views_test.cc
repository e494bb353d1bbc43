#include "skiff/cli/views.h"

#include <gtest/gtest.h>

#include "skiff/cli/format.h"

namespace skiff::cli {
namespace {

using nlohmann::json;

// 2024-05-01T12:00:00Z
constexpr double kNoon = 1714564800.0;

std::string table(const ListView& view, const std::vector<Row>& rows) {
  auto tmpl = Template::parse(view.defaultFormat, view.fields);
  EXPECT_TRUE(tmpl.ok());
  return tmpl.ok() ? tmpl->render(rows) : "";
}

TEST(ServiceView, DefaultTableIsDockers) {
  const json services = json::parse(R"([{"id":"x7k2m9q4w1e8r5t3y6u0i2o4p","name":"getstartedlab_web",
      "stack":"getstartedlab","mode":"replicated","replicas":"5/5","running":5,"desired":5,
      "image":"s3ich4n/get-started:pt02","ports":"*:4000->80/tcp"}])");
  EXPECT_EQ(table(serviceView(), serviceRows(services)),
            "ID             NAME                MODE         REPLICAS   IMAGE                      PORTS\n"
            "x7k2m9q4w1e8   getstartedlab_web   replicated   5/5        s3ich4n/get-started:pt02   *:4000->80/tcp\n");
}

TEST(TaskView, HistoryRowsStateAgeAndQuotedTruncatedError) {
  const json tasks = json::parse(R"([
    {"id":"aaaaaaaaaaaaaaaaaaaa","name":"getstartedlab_web.1","image":"img:1","node":"lab1",
     "desiredState":"Running","currentState":"Running","since":"2024-05-01T11:59:55Z","error":""},
    {"id":"bbbbbbbbbbbbbbbbbbbb","name":"getstartedlab_web.1","image":"img:1","node":"lab1",
     "desiredState":"Shutdown","currentState":"Failed","since":"2024-05-01T11:58:00Z",
     "error":"exec: \"nosuch\": executable file not found in $PATH"}])");
  const auto rows = taskRows(tasks, kNoon, false);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].at("Name"), "getstartedlab_web.1");
  EXPECT_EQ(rows[1].at("Name"), "\\_ getstartedlab_web.1");
  EXPECT_EQ(rows[0].at("CurrentState"), "Running 5 seconds ago");
  EXPECT_EQ(rows[1].at("CurrentState"), "Failed 2 minutes ago");
  EXPECT_EQ(rows[0].at("ID"), "aaaaaaaaaaaa");
  EXPECT_EQ(rows[0].at("Error"), "");
  EXPECT_EQ(rows[1].at("Error"), "\"exec: \\\"nosuch\\\": executable fi…\"");
  const auto full = taskRows(tasks, kNoon, true);
  EXPECT_EQ(full[1].at("Error"), "\"exec: \\\"nosuch\\\": executable file not found in $PATH\"");
  EXPECT_EQ(full[1].at("ID"), "bbbbbbbbbbbbbbbbbbbb");

  const std::string out = table(taskView(), rows);
  EXPECT_EQ(out.substr(0, out.find('\n')),
            "ID             NAME                     IMAGE     NODE      DESIRED STATE   CURRENT STATE           "
            "ERROR" +
                std::string(32, ' ') + "PORTS");
}

TEST(ContainerView, QuotedCommandAndCreatedAgo) {
  const json containers = json::parse(R"([{"id":"0123456789abcdef","names":"getstartedlab_web.1.abc",
      "image":"img:1","command":"/app/hello --port 80 --verbose","created":"2024-05-01T10:00:00Z",
      "status":"Up 2 hours","state":"running","pid":4242,"networks":{"getstartedlab_webnet":"10.0.1.3"}}])");
  const auto rows = containerRows(containers, kNoon, false);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].at("ID"), "0123456789ab");
  EXPECT_EQ(rows[0].at("Command"), "\"/app/hello --port 8…\"");
  EXPECT_EQ(rows[0].at("RunningFor"), "2 hours ago");
  EXPECT_EQ(rows[0].at("Pid"), "4242");
  EXPECT_EQ(rows[0].at("Networks"), "getstartedlab_webnet");
  const std::string out = table(containerView(), rows);
  EXPECT_EQ(out.substr(0, out.find('\n')),
            "CONTAINER ID   IMAGE     COMMAND                  CREATED       STATUS       PORTS     NAMES");
}

TEST(ImageView, SizeAndIdLikeDocker) {
  const json images = json::parse(R"([{"id":"sha256:9f8e7d6c5b4a39281706","repository":"s3ich4n/get-started",
      "tag":"pt02","created":"2024-05-01T11:59:00Z","size":1200000}])");
  EXPECT_EQ(table(imageView(), imageRows(images, kNoon)),
            "REPOSITORY            TAG       IMAGE ID       CREATED              SIZE\n"
            "s3ich4n/get-started   pt02      9f8e7d6c5b4a   About a minute ago   1.2MB\n");
}

TEST(NodeView, MarksSelf) {
  const json nodes = json::parse(R"([{"id":"n1","hostname":"lab1","status":"Ready","availability":"Active",
      "managerStatus":"Leader","self":true},{"id":"n2","hostname":"lab2","status":"Down",
      "availability":"Active","managerStatus":"","self":false}])");
  EXPECT_EQ(table(nodeView(), nodeRows(nodes)),
            "ID        HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS\n"
            "n1 *      lab1       Ready     Active         Leader\n"
            "n2        lab2       Down      Active         \n");
}

TEST(NetworkAndStackViews, Columns) {
  const json networks = json::parse(R"([{"id":"abcdef0123456789","name":"getstartedlab_webnet",
      "driver":"overlay","scope":"swarm","vni":4097,"subnet":"10.0.1.0/24"}])");
  EXPECT_EQ(table(networkView(), networkRows(networks)),
            "NETWORK ID     NAME                   DRIVER    SCOPE\n"
            "abcdef012345   getstartedlab_webnet   overlay   swarm\n");
  EXPECT_EQ(networkRows(networks)[0].at("VNI"), "4097");
  EXPECT_EQ(table(stackView(), stackRows(json::parse(R"([{"name":"getstartedlab","services":1}])"))),
            "NAME            SERVICES\ngetstartedlab   1\n");
}

}  // namespace
}  // namespace skiff::cli
