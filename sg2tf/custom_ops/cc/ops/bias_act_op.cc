// Registration of Sg2tfBiasAct (contract: ../README.md). Kernels: kernels/bias_act_kernel.*.

#include "kernels/bias_act_kernel.h"
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace sg2tf {
namespace {

using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

absl::Status BiasActShape(InferenceContext* c) {
  int act = 0, grad = 0, axis = 0;
  TF_RETURN_IF_ERROR(c->GetAttr("act", &act));
  TF_RETURN_IF_ERROR(c->GetAttr("grad", &grad));
  TF_RETURN_IF_ERROR(c->GetAttr("axis", &axis));
  if (act < 0 || act >= kNumActs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Sg2tfBiasAct: act=", act, " is not an activation index; expected 0..", kNumActs - 1,
        " (the index of activation_funcs in sg2tf/custom_ops/bias_act.py)"));
  }
  if (grad < 0 || grad >= kNumGradModes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Sg2tfBiasAct: grad=", grad, " is not a mode; expected 0 (forward), 1 (first "
        "derivative) or 2 (second derivative)"));
  }
  ShapeHandle x = c->input(0);
  if (c->RankKnown(x)) {
    const int rank = c->Rank(x);
    if (axis < 0 || axis >= (rank > 0 ? rank : 1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Sg2tfBiasAct: axis=", axis, " is out of range for x of rank ", rank,
          "; expected 0 <= axis < rank"));
    }
  } else if (axis < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Sg2tfBiasAct: axis=", axis, " must be >= 0"));
  }
  ShapeHandle unused;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 1, &unused));  // b: [C] or [0].
  c->set_output(0, x);
  return absl::OkStatus();
}

absl::Status BiasActReduceShape(InferenceContext* c) {
  TF_RETURN_IF_ERROR(BiasActShape(c));
  int axis = 0;
  TF_RETURN_IF_ERROR(c->GetAttr("axis", &axis));
  ShapeHandle x = c->input(0);
  if (!c->RankKnown(x)) {
    c->set_output(1, c->Vector(InferenceContext::kUnknownDim));
  } else if (c->Rank(x) == 0) {
    c->set_output(1, c->Vector(1));
  } else {
    c->set_output(1, c->Vector(c->Dim(x, axis)));
  }
  return absl::OkStatus();
}

}  // namespace

// Inputs and attrs shared by both ops (a macro: REGISTER_OP's builder chain is an expression).
#define SG2TF_BIAS_ACT_INPUTS_AND_ATTRS          \
  .Input("x: T")                                 \
      .Input("b: T")                             \
      .Input("xref: T")                          \
      .Input("yref: T")                          \
      .Input("dy: T")                            \
      .Attr("T: {float, half, bfloat16}")        \
      .Attr("act: int")                          \
      .Attr("grad: int")                         \
      .Attr("axis: int")                         \
      .Attr("alpha: float")                      \
      .Attr("gain: float")                       \
      .Attr("clamp: float")

REGISTER_OP("Sg2tfBiasAct")
    SG2TF_BIAS_ACT_INPUTS_AND_ATTRS
    .Output("y: T")
    .SetShapeFn(BiasActShape)
    .Doc(R"doc(
Fused bias + activation + gain + clamp (grad=0) and its first (grad=1) and second (grad=2)
derivatives, elementwise. b runs along `axis` of x and may be empty; xref/yref/dy are x's
shape or empty. See sg2tf/custom_ops/cc/README.md.
)doc");

// The same, plus db: the sum of y over every axis but `axis`, computed in the same pass (the
// bias gradient when y is a gradient). CPU only: on GPUs the bias gradient is TF's
// BiasAddGrad, a tuned reduction.
REGISTER_OP("Sg2tfBiasActReduce")
    SG2TF_BIAS_ACT_INPUTS_AND_ATTRS
    .Output("y: T")
    .Output("db: T")
    .SetShapeFn(BiasActReduceShape)
    .Doc(R"doc(
Sg2tfBiasAct with a second output db = the sum of y over every axis but `axis`
([x.shape[axis]]), accumulated while y is written. CPU kernels only.
)doc");

#undef SG2TF_BIAS_ACT_INPUTS_AND_ATTRS

}  // namespace sg2tf
