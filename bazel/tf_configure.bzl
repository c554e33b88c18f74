"""Repository rule exposing the installed TensorFlow's headers and framework library.

Runs the configured Python (env PYTHON_BIN_PATH, default python3) to ask
tf.sysconfig where they are, the same source of truth the setuptools-free build
(sg2tf/custom_ops/build.py) uses. Untested here: no Bazel on the project's machines.
"""

def _python(repository_ctx):
    return repository_ctx.os.environ.get("PYTHON_BIN_PATH", "python3")

def _ask(repository_ctx, expr):
    result = repository_ctx.execute([
        _python(repository_ctx),
        "-c",
        "import tensorflow as tf; print(%s)" % expr,
    ])
    if result.return_code != 0:
        fail("tf_configure: could not import tensorflow with %s:\n%s" % (_python(repository_ctx), result.stderr))
    return result.stdout.strip()

def _tf_configure_impl(repository_ctx):
    include_dir = _ask(repository_ctx, "tf.sysconfig.get_include()")
    lib_dir = _ask(repository_ctx, "tf.sysconfig.get_lib()")
    repository_ctx.symlink(include_dir, "include")
    repository_ctx.symlink(lib_dir + "/libtensorflow_framework.so.2", "libtensorflow_framework.so.2")
    repository_ctx.file("BUILD", """
package(default_visibility = ["//visibility:public"])

cc_library(
    name = "tf_header_lib",
    hdrs = glob(["include/**"]),
    includes = ["include"],
    defines = ["_GLIBCXX_USE_CXX11_ABI=1", "EIGEN_MAX_ALIGN_BYTES=64"],
)

cc_library(
    name = "libtensorflow_framework",
    srcs = ["libtensorflow_framework.so.2"],
)
""")

tf_configure = repository_rule(
    implementation = _tf_configure_impl,
    environ = ["PYTHON_BIN_PATH"],
    local = True,
)
