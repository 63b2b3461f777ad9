"""How consumption is counted, the same way in the speed layer, the batch layer and the tests.

* interval measurements (Pulse1: litres per 15 minutes): consumption is the sum of the values;
* register measurements (Pulse1_Total, DAIAD's meter reading): consumption is the *step* from
  the meter's previous reading in event-time order — never a sum of register values (the public
  Spark version of this pipeline summed the register and flagged every meter as high);
  a fall to at most :data:`REGISTER_RESET_RATIO` of the previous value is a **reset** (meter
  swap, roll-over) and the new value counts from zero; any smaller fall is a negative step
  (sensor jitter, back-flow, two devices interleaved on one key — all seen in DAIAD), counted as
  it is so that a run of steps nets out to last - first;
* gauge measurements (battery, temperature): no consumption.
"""

from __future__ import annotations

REGISTER_RESET_RATIO = 0.1
"""A register falling to at most this share of its previous value has been reset."""
