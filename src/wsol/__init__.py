"""wsol: weakly supervised object localization.

Methods, training engine and the field's evaluation protocol.
"""

__version__ = "0.1.0"
