"""One package per paper; importing this registers every stage (configs only, no torch)."""
from . import finetune  # noqa: F401
from . import kdqat  # noqa: F401
from . import selfdistill  # noqa: F401
from . import tickets  # noqa: F401
from . import vera  # noqa: F401
