"""Simulated blood-pressure cuffs on a real Bluetooth stack (Bumble).

- `simulators.physiology`: the patient (pure, seeded): profiles, dose response, problems.
- `simulators.frames`: what a cuff sends for a reading (codec frames, quirks).
- `simulators.clock.SimClock`: simulated time at `--speed`.
- `simulators.cuff`: `CuffConfig`, `SimulatedCuff` (one Bumble GATT peripheral).
- `simulators.radio.VirtualRadio`: the shared Bumble `LocalLink`, HCI over TCP.
- `simulators.scenarios`: `start_scenario()` (a new `VirtualRadio` unless given one), and
  re-exports `simulators.fleet`: the named scenarios and `CuffFleet`.
- `simulators.cli`: the `vitals-sim` command.
"""
