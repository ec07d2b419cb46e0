"""The connector: customer records inside Gmail and Outlook.

The app is made by connector.app.create_app; the command line starts in connector.console.
"""
