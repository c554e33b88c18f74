"""Old name of sg2tf.paper_configs (the paper's network configurations a-f), kept so that
`from sg2tf import configs` and `import sg2tf.configs` keep working: both give that module
itself, not a copy."""

import sys

from sg2tf import paper_configs

sys.modules[__name__] = paper_configs
