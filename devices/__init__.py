"""Bluetooth side: Blood Pressure Service codec, cuff links, supervisor."""
