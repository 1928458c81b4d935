"""Canonical URLs the mapping and its checks name: US Core profiles, code systems and identifier systems.

The terminology itself (what a source's codes map to) is data: FHIR ConceptMaps and ValueSets under
mappings/terminology/, read by beam_pipeline/mapping/terminology.py.
"""

from __future__ import annotations

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
US_CORE_PATIENT = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"
US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
US_CORE_ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
CDC_RACE_ETHNICITY = "urn:oid:2.16.840.1.113883.6.238"
MARITAL_STATUS = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
PASSPORT_SYSTEM = "http://hl7.org/fhir/sid/passport-USA"
DEFAULT_SOURCE_ID_SYSTEM = "urn:kafka-to-fhir:source-id"
US_CORE_ENCOUNTER = US_CORE + "us-core-encounter"
US_CORE_CONDITION_ENCOUNTER_DIAGNOSIS = US_CORE + "us-core-condition-encounter-diagnosis"
US_CORE_CONDITION_PROBLEMS = US_CORE + "us-core-condition-problems-health-concerns"
US_CORE_OBSERVATION_LAB = US_CORE + "us-core-observation-lab"
US_CORE_VITAL_SIGNS = US_CORE + "us-core-vital-signs"
US_CORE_SMOKING_STATUS = US_CORE + "us-core-smokingstatus"
US_CORE_SCREENING_ASSESSMENT = US_CORE + "us-core-observation-screening-assessment"
US_CORE_SIMPLE_OBSERVATION = US_CORE + "us-core-simple-observation"
US_CORE_CLINICAL_RESULT = US_CORE + "us-core-observation-clinical-result"
US_CORE_IMMUNIZATION = US_CORE + "us-core-immunization"
US_CORE_ALLERGY = US_CORE + "us-core-allergyintolerance"
US_CORE_PROCEDURE = US_CORE + "us-core-procedure"
US_CORE_MEDICATION_REQUEST = US_CORE + "us-core-medicationrequest"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
# Identifier system of rows that carry no Id: the value is a hash of the row's natural key (hashKey), so a
# redelivered or replayed row lands on the same resource.
DEFAULT_NATURAL_KEY_SYSTEM = "urn:kafka-to-fhir:natural-key"
SMOKING_STATUS_CODE = "72166-2"
# FHIR AdministrativeGender: the codes Patient.gender takes (a required binding).
GENDER_CODES = frozenset({"male", "female", "other", "unknown"})
