"""Bluetooth SIG assigned numbers used by vitalsd, as plain ints.

Kept free of Bumble and Bleak so the codec, the simulator (Bumble) and the link (Bleak)
share one source of truth. Numbers come from the Bluetooth SIG Assigned Numbers document
(section 3.4 GATT Services, 3.8 Characteristics, 3.7 Descriptors, 2.6 Appearance) and
the Core Specification Vol 3 Part F 3.4.1.1 (ATT error codes).
"""

from typing import Final

# --- Services (Assigned Numbers 3.4.2) -----------------------------------------------
BLOOD_PRESSURE_SERVICE: Final = 0x1810
DEVICE_INFORMATION_SERVICE: Final = 0x180A
BATTERY_SERVICE: Final = 0x180F
CURRENT_TIME_SERVICE: Final = 0x1805

# --- Characteristics (Assigned Numbers 3.8.1) ----------------------------------------
# Blood Pressure Service 1.1, section 3
BLOOD_PRESSURE_MEASUREMENT: Final = 0x2A35
INTERMEDIATE_CUFF_PRESSURE: Final = 0x2A36
BLOOD_PRESSURE_FEATURE: Final = 0x2A49
RECORD_ACCESS_CONTROL_POINT: Final = 0x2A52
BLOOD_PRESSURE_RECORD: Final = 0x2B36
ENHANCED_BLOOD_PRESSURE_MEASUREMENT: Final = 0x2B34
ENHANCED_INTERMEDIATE_CUFF_PRESSURE: Final = 0x2B35
# Device Information Service 1.1
MANUFACTURER_NAME_STRING: Final = 0x2A29
MODEL_NUMBER_STRING: Final = 0x2A24
SERIAL_NUMBER_STRING: Final = 0x2A25
FIRMWARE_REVISION_STRING: Final = 0x2A26
# Battery Service 1.0
BATTERY_LEVEL: Final = 0x2A19
# Current Time Service 1.1
CURRENT_TIME: Final = 0x2A2B
DATE_TIME: Final = 0x2A08

# --- Descriptors (Assigned Numbers 3.7) ----------------------------------------------
CLIENT_CHARACTERISTIC_CONFIGURATION: Final = 0x2902
# CCCD values (Core Vol 3 Part G 3.3.3.3): written little-endian as two bytes.
CCCD_NOTIFY: Final = 0x0001
CCCD_INDICATE: Final = 0x0002

# --- Appearance (Assigned Numbers 2.6.3, category 0x00E = Blood Pressure) ----------------
APPEARANCE_BLOOD_PRESSURE: Final = 0x0380
APPEARANCE_BLOOD_PRESSURE_ARM: Final = 0x0381
APPEARANCE_BLOOD_PRESSURE_WRIST: Final = 0x0382

# --- ATT error codes (Core Vol 3 Part F 3.4.1.1; Core Specification Supplement Part B) ---
ATT_INSUFFICIENT_AUTHENTICATION: Final = 0x05
ATT_INSUFFICIENT_ENCRYPTION: Final = 0x0F
# Common Profile and Service Error Codes (Core Specification Supplement Part B, 1.2):
# returned by a RACP write when its CCCD is not enabled for indications, or while a
# previous RACP procedure is still running (Blood Pressure Service 1.1, 3.5.2).
ATT_CCCD_IMPROPERLY_CONFIGURED: Final = 0xFD
ATT_PROCEDURE_ALREADY_IN_PROGRESS: Final = 0xFE
ATT_OUT_OF_RANGE: Final = 0xFF

# Bluetooth Base UUID (Core Vol 3 Part B 2.5.1): a 16-bit UUID xxxx stands for
# 0000xxxx-0000-1000-8000-00805F9B34FB.
_BASE_UUID_SUFFIX: Final = "-0000-1000-8000-00805f9b34fb"


def uuid128(short: int) -> str:
    """Expand a 16-bit SIG UUID to the lowercase 128-bit string Bleak uses as a key."""
    if not 0 <= short <= 0xFFFF:
        raise ValueError(f"a 16-bit UUID must be within 0x0000..0xFFFF, got {short:#x}")
    return f"0000{short:04x}{_BASE_UUID_SUFFIX}"
