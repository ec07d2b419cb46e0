"""Bringing records in from other systems' files, and taking them out again.

reading: CSV (as Outlook, Google Contacts, HubSpot, Salesforce and Odoo export it) and vCard
files, their columns mapped to fields by name (headers); importing: batched matching and
upserts, a bad row rejected alone; exporting: CSV and JSON lines, streamed.
"""
