"""Filesystem side of the store: directories to snapshot trees and back, safely."""
