// Sg2tfUpfirdn2d registration and shape function. Contract: ../README.md.
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace sg2tf {
namespace {

using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

// One spatial output size, or unknown when the input or filter size is not static.
absl::Status OutputDim(InferenceContext* c, DimensionHandle in, DimensionHandle taps,
                       const char* axis, int64_t up, int64_t down, int64_t p0, int64_t p1,
                       DimensionHandle* out) {
  if (!c->ValueKnown(in) || !c->ValueKnown(taps)) {
    *out = c->UnknownDim();
    return absl::OkStatus();
  }
  const int64_t n_in = c->Value(in), n_taps = c->Value(taps);
  const int64_t span = n_in * up + p0 + p1 - n_taps;
  if (span < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Sg2tfUpfirdn2d: the output ", axis, " would be empty: input ", n_in, " x up ", up,
        " + padding (", p0, ", ", p1, ") is smaller than the filter (", n_taps,
        " taps). Use more padding or a smaller filter."));
  }
  *out = c->MakeDim(span / down + 1);
  return absl::OkStatus();
}

absl::Status Upfirdn2dShape(InferenceContext* c) {
  ShapeHandle x, f;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));  // [N, H, W, C]
  TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 2, &f));  // [fh, fw]
  int64_t upx, upy, downx, downy, px0, px1, py0, py1;
  TF_RETURN_IF_ERROR(c->GetAttr("upx", &upx));
  TF_RETURN_IF_ERROR(c->GetAttr("upy", &upy));
  TF_RETURN_IF_ERROR(c->GetAttr("downx", &downx));
  TF_RETURN_IF_ERROR(c->GetAttr("downy", &downy));
  TF_RETURN_IF_ERROR(c->GetAttr("padx0", &px0));
  TF_RETURN_IF_ERROR(c->GetAttr("padx1", &px1));
  TF_RETURN_IF_ERROR(c->GetAttr("pady0", &py0));
  TF_RETURN_IF_ERROR(c->GetAttr("pady1", &py1));
  for (DimensionHandle d : {c->Dim(f, 0), c->Dim(f, 1)}) {
    if (c->ValueKnown(d) && c->Value(d) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Sg2tfUpfirdn2d: the filter f must not be empty, got shape ", c->DebugString(f)));
    }
  }
  DimensionHandle out_h, out_w;
  TF_RETURN_IF_ERROR(
      OutputDim(c, c->Dim(x, 1), c->Dim(f, 0), "height", upy, downy, py0, py1, &out_h));
  TF_RETURN_IF_ERROR(
      OutputDim(c, c->Dim(x, 2), c->Dim(f, 1), "width", upx, downx, px0, px1, &out_w));
  c->set_output(0, c->MakeShape({c->Dim(x, 0), out_h, out_w, c->Dim(x, 3)}));
  return absl::OkStatus();
}

}  // namespace

REGISTER_OP("Sg2tfUpfirdn2d")
    .Input("x: T")      // [N, H, W, C]
    .Input("f: float")  // [fh, fw], gain folded in
    .Output("y: T")     // [N, outH, outW, C]
    .Attr("T: {float, half, bfloat16}")
    .Attr("upx: int >= 1")
    .Attr("upy: int >= 1")
    .Attr("downx: int >= 1")
    .Attr("downy: int >= 1")
    .Attr("padx0: int")
    .Attr("padx1: int")
    .Attr("pady0: int")
    .Attr("pady1: int")
    .Attr("flip_filter: bool")
    .SetShapeFn(Upfirdn2dShape)
    .Doc(R"doc(
Upsamples x by zero insertion (upx, upy), pads it (negative values crop), filters it with f
(a true convolution unless flip_filter) and keeps every (downx, downy)-th sample. NHWC.
)doc");

}  // namespace sg2tf
