#include "server/pipeline/templates.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace elexirion::pipeline {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

class TemplatesTest : public ::testing::Test {
 protected:
  TemplatesTest() {
    inputs_ = {{"code", "def f(): pass"}, {"a", 2},        {"b", 3},
               {"cfg", {{"lang", "py"}}}, {"flag", false}, {"n", nullptr}};
    globals_ = {{"team", "core"}, {"limit", 5}};
    results_ = {{"analyze",
                 {{"text", "found 2 bugs"},
                  {"success", true},
                  {"findings", {{"count", 2}, {"top", "null deref"}}}}},
                {"nested", {{"result", {{"value", "wrapped"}}}}}};
    state_.global = {{"count", 2}, {"name", "pipe"}, {"obj", {{"k", "v"}}}};
    ctx_.inputs = &inputs_;
    ctx_.global_vars = &globals_;
    ctx_.results = &results_;
    ctx_.state = &state_;
  }

  std::string Text(const std::string& s) {
    auto r = InterpolateToText(s, ctx_);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : "";
  }

  json inputs_, globals_, results_;
  VariableState state_;
  TemplateContext ctx_;
};

TEST_F(TemplatesTest, Inputs) {
  EXPECT_EQ(Text("Review: {{inputs.code}} ({{ inputs.cfg.lang }})"), "Review: def f(): pass (py)");
  EXPECT_EQ(Text("{{inputs.missing}} and {{inputs.cfg.none}}"),
            "{{inputs.missing}} and {{inputs.cfg.none}}");
  EXPECT_EQ(Text("x{{inputs.flag}}"), "xfalse");
  EXPECT_EQ(Text("x{{inputs.n}}"), "x{{inputs.n}}");
  // Without the inputs option every inputs template stays literal.
  TemplateContext no_inputs = ctx_;
  no_inputs.inputs = nullptr;
  EXPECT_EQ(*InterpolateToText("{{inputs.code}}", no_inputs), "{{inputs.code}}");
}

TEST_F(TemplatesTest, WholeTemplateKeepsTypeWithInputs) {
  EXPECT_EQ(*InterpolateString("  {{inputs.a}}  ", ctx_), json(2));
  EXPECT_EQ(*InterpolateString("{{inputs.cfg}}", ctx_), (json{{"lang", "py"}}));
  EXPECT_EQ(*InterpolateString("{{inputs.a}} ", ctx_), json(2));
  EXPECT_EQ(*InterpolateString("{{inputs.a}}{{inputs.b}}", ctx_), json("23"));
  TemplateContext no_inputs = ctx_;
  no_inputs.inputs = nullptr;
  EXPECT_EQ(*InterpolateString("{{global_vars.limit}}", no_inputs), json("5"));
}

TEST_F(TemplatesTest, Steps) {
  EXPECT_EQ(Text("{{steps.analyze.text}}"), "found 2 bugs");
  EXPECT_EQ(Text("top: {{steps.analyze.findings.top}} x{{steps.analyze.findings.count}}"),
            "top: null deref x2");
  EXPECT_EQ(Text("{{steps.nested.value}}|{{steps.nested.result.value}}"), "wrapped|wrapped");
  EXPECT_EQ(Text("{{steps.unknown.text}}|{{steps.analyze.nope}}"),
            "{{steps.unknown.text}}|{{steps.analyze.nope}}");
  // A map in running text cannot be rendered (pipeline_ex raises).
  auto r = InterpolateToText("all: {{steps.analyze}}", ctx_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("{{steps.analyze}}"));
}

TEST_F(TemplatesTest, GlobalVarsStateAndBareNames) {
  EXPECT_EQ(Text("{{global_vars.team}}/{{global_vars.nope}}"), "core/{{global_vars.nope}}");
  TemplateContext no_globals = ctx_;
  no_globals.global_vars = nullptr;
  EXPECT_EQ(*InterpolateToText("{{global_vars.team}}", no_globals), "{{global_vars.team}}");
  EXPECT_EQ(Text("[{{state.name}}][{{state.obj.k}}][{{state.missing}}][{{name}}][{{nope}}]"),
            "[pipe][v][][pipe][]");
  // Documented built-ins are not implemented in pipeline_ex: they render "".
  EXPECT_EQ(Text("at {{timestamp}}"), "at ");
}

TEST_F(TemplatesTest, ArithmeticAndFunctions) {
  EXPECT_EQ(Text("{{state.count + 1}}"), "3");
  EXPECT_EQ(Text("{{state.missing + 1}}"), "1");
  EXPECT_EQ(Text("{{count * 4}}"), "8");
  EXPECT_EQ(Text("{{count / 2}}"), "2 / 2");  // division is not evaluated
  EXPECT_EQ(Text("{{multiply(inputs.a, inputs.b)}}"), "6");
  EXPECT_EQ(Text("{{add(1, 2.5)}}"), "3.5");
  EXPECT_EQ(Text("{{divide(5, 2)}}"), "2.5");
  EXPECT_EQ(Text("{{divide(5, 0)}}"), "0");
  EXPECT_EQ(Text("{{max(1, 7, 3)}}"), "7");
  EXPECT_EQ(Text("{{round(2.5)}}"), "3");
  EXPECT_EQ(Text("{{nosuch(1, 2)}}"), "nosuch(1, 2)");
}

TEST_F(TemplatesTest, MatchingRules) {
  EXPECT_EQ(Text("{{{inputs.a}}}"), "}");  // expression "{inputs.a": an unknown variable
  EXPECT_EQ(Text("{{}} {{ }} {{a}b}}"), "{{}}  {{a}b}}");
  EXPECT_EQ(Text("no templates"), "no templates");
}

TEST(ResolveVariableValueTest, SetVariableSemantics) {
  VariableState state;
  state.global = {{"counter", 1}};
  EXPECT_EQ(*ResolveVariableValue(json("{{state.counter + 1}}"), state), json(2));
  EXPECT_EQ(*ResolveVariableValue(json(" {{counter}} "), state), json(1));
  EXPECT_EQ(*ResolveVariableValue(json("n={{counter}}"), state), json("n=1"));
  EXPECT_EQ(*ResolveVariableValue(json(7), state), json(7));
  // Steps and inputs are not visible to set_variable's own resolution.
  EXPECT_EQ(*ResolveVariableValue(json("{{steps.x.text}}"), state), json());
}

}  // namespace
}  // namespace elexirion::pipeline
