"""Clinical records out of vitalsd (issue #8): FHIR R4, CSV, the printable session report
and the esketamine REMS patient monitoring form data.

The builders (`fhir`, `csv_export`, `report`, `rems`) are pure functions of the plain data
in `record`; `query` reads that data from the database; `api/routes/exports.py` serves
them.
"""
