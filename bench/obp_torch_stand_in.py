"""Imported before obp by the bench scripts that run it (they run from this folder, which
Python puts on the import path)."""


def import_torch_or_stand_in():
    """obp imports torch at module level for its neural-network policies only; the
    estimators, RegressionModel and BernoulliTS used here never call it. Where torch cannot be
    imported (a CUDA wheel without its libraries), register an inert stand-in so obp loads."""
    try:
        import torch  # noqa: F401
    except Exception:
        import sys
        import types

        class StandIn(types.ModuleType):
            def __getattr__(self, name):
                if name.startswith("__"):
                    raise AttributeError(name)
                if name[:1].isupper():
                    return type(name, (), {})
                return StandIn(f"{self.__name__}.{name}")

            def __call__(self, *args, **kwargs):
                return self

        for name in ["torch", "torch.nn", "torch.nn.functional", "torch.optim", "torch.utils", "torch.utils.data"]:
            sys.modules[name] = StandIn(name)


import_torch_or_stand_in()
