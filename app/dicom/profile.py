"""The de-identification profile as data: an allow-list by module, Table E.1-1 on top, IOD Types.

Teachfile keeps an attribute only when it is known to be safe for teaching
(PS3.15 E.1.1: Table E.1-1 is a floor, not a complete list of what identifies a
patient or a hospital). Three tables decide what happens to each attribute:

1. :data:`ALLOWED`, the curated allow-list: the attributes a teaching file needs,
   grouped by the PS3.3 module or macro they come from, each group with the reason
   its attributes identify nobody. It was built from the modules of the IODs the
   library accepts (images, enhanced multi-frame functional group macros, SR coded
   content, presentation states, RT dose) by taking what rendering, measuring and
   teaching use, and leaving out every name, free-text comment, identifier, address,
   device serial number, station or institution name. Every UID is allowed as a
   class: it is replaced by a keyed hash (E.3.9 note), so it carries nothing.
   A sequence is kept only when it is listed (or the IOD requires it), and its items
   are walked by the same rules at any depth.
2. Table E.1-1 (``app/data/ps3.15-table-e.1-1.json``), resolved for the options
   below, applies on top of the allow-list to what is kept: UIDs replaced, dates
   shifted, descriptors cleaned, identifying attributes removed even if listed.
3. The IOD's Types (``app/data/iod-types.json.gz``, made by ``scripts/make_iod_types.py``
   from the PS3.3 module tables): an attribute that is removed (not allowed, or
   removed by E.1-1) but required by the object's IOD at its path is dummied when it
   is Type 1 or 1C and emptied when it is Type 2 or 2C, so the output stays valid
   DICOM; a conditional attribute whose condition is an attribute that goes
   (:data:`CONDITIONED`) goes with it.

Options claimed (PS3.15 E.3, recorded in De-identification Method Code Sequence):

* Basic Application Level Confidentiality Profile (E.1)
* Retain Patient Characteristics (E.3.6), limited to Patient's Sex, Age, Size and
  Weight: the other characteristics it allows (ethnic group, smoking status, ...)
  are not on the allow-list, and ages above 89 years become 090Y (HIPAA Safe Harbor)
* Retain Longitudinal Temporal Information with Modified Dates (E.3.6)
* Clean Descriptors (E.3.5), for the descriptors on the allow-list
* Clean Structured Content (E.3.3): SR content trees keep coded content, numbers,
  references and cleaned text values
* Clean Graphics (E.3.3): overlays and curves are removed outright, text in
  presentation-state graphic annotations is cleaned
* Retain Safe Private (E.3.10) only when asked for.
"""

from __future__ import annotations

import functools
import gzip
import json
from enum import Enum
from pathlib import Path
from typing import Final

from pydicom.datadict import tag_for_keyword

DATA: Final = Path(__file__).parent.parent / "data"


class Action(Enum):
    """What happens to one attribute."""

    REMOVE = "X"
    EMPTY = "Z"
    DUMMY = "D"
    UID = "U"
    KEEP = "K"
    SHIFT = "shift"  # a date, time or date-time: moved by the patient's offset (E.3.6)
    CLEAN = "clean"  # text: cleaned of identifiers, else removed or emptied (E.3.5)
    RECURSE = "recurse"  # a sequence kept, its items de-identified by the same rules


#: The options claimed, in the order they override the basic action.
OPTIONS: Final = (
    "rtnPatCharsOpt",
    "rtnLongModifDatesOpt",
    "cleanDescOpt",
    "cleanStructContOpt",
    "cleanGraphOpt",
)

#: Text written to De-identification Method (0012,0063), LO, one line per value (64 max).
METHOD_TEXT: Final = (
    "PS3.15 E.1 basic profile, options in (0012,0064)",
    "allow-list by PS3.3 module, curated for teaching",
    "E.1-1 actions on kept attributes; IOD Types keep it valid",
)

def _tags(keywords: str) -> list[int]:
    """The tags of space-separated DICOM keywords; an unknown keyword is a bug here."""
    tags = []
    for keyword in keywords.split():
        tag = tag_for_keyword(keyword)
        if tag is None:
            raise RuntimeError(f"keyword unknown to pydicom: {keyword}")
        tags.append(int(tag))
    return tags


# --- 1. the allow-list -----------------------------------------------------------------------
#
# group name -> (why these identify nobody, the keywords). Read a group's reason before
# adding to it: an attribute that can hold a name, a place, a free-text comment or an
# identifier does not belong here, whatever module it comes from.

_GROUPS: Final[dict[str, tuple[str, str]]] = {
    "SOP Common, General Study/Series/Image (C.12.1, C.7.2.1, C.7.3.1, C.7.6.1)": (
        "what the object is and where it sits in its study: class, modality, numbers, "
        "image type and laterality are teaching facts; the UIDs are replaced, the dates "
        "shifted, and the descriptors cleaned by Table E.1-1",
        "SpecificCharacterSet SOPClassUID SOPInstanceUID Modality StudyInstanceUID "
        "SeriesInstanceUID StudyDate StudyTime SeriesDate SeriesTime AcquisitionDate "
        "AcquisitionTime AcquisitionDateTime ContentDate ContentTime SeriesNumber "
        "InstanceNumber AcquisitionNumber ImageType Laterality ImageLaterality "
        "StudyDescription SeriesDescription ProtocolName PresentationIntentType "
        "ContentQualification QualityControlImage BurnedInAnnotation "
        "RecognizableVisualFeatures LossyImageCompression LossyImageCompressionRatio "
        "LossyImageCompressionMethod ConversionType ConcatenationUID InConcatenationNumber "
        "ConcatenationFrameOffsetNumber InConcatenationTotalNumber",
    ),
    "References to other objects (C.7.6.1, C.12.1, Code Sequence Macro 8.8)": (
        "references point at other de-identified objects (their UIDs are replaced "
        "consistently); coded concepts are terms from a coding scheme, not free text; "
        "a scheme's name and external id are not listed: a local scheme's name is its "
        "owner's, often the hospital's",
        "ReferencedImageSequence ReferencedSOPClassUID ReferencedSOPInstanceUID "
        "ReferencedFrameNumber ReferencedSegmentNumber ReferencedSeriesSequence "
        "ReferencedInstanceSequence ReferencedSOPSequence SourceImageSequence "
        "DerivationImageSequence DerivationCodeSequence DerivationDescription "
        "PurposeOfReferenceCodeSequence CodingSchemeIdentificationSequence "
        "CodingSchemeRegistry CodingSchemeUID "
        "CodeValue CodingSchemeDesignator "
        "CodingSchemeVersion CodeMeaning LongCodeValue URNCodeValue MappingResource "
        "MappingResourceUID ContextGroupVersion ContextGroupLocalVersion ContextIdentifier "
        "ContextUID ContextGroupExtensionFlag ContextGroupExtensionCreatorUID",
    ),
    "Anatomy and procedure (C.7.3.1, C.7.6.1, C.8.19.6.2, Request Attributes)": (
        "body part, view and coded procedure are what the case teaches; the request's "
        "free-text descriptions are cleaned, its identifiers and issuers are not listed",
        "BodyPartExamined AnatomicRegionSequence AnatomicRegionModifierSequence "
        "PrimaryAnatomicStructureSequence ViewPosition ViewCodeSequence "
        "ViewModifierCodeSequence ProcedureCodeSequence PerformedProtocolCodeSequence "
        "PerformedProcedureCodeSequence "
        "RequestAttributesSequence RequestedProcedureDescription "
        "RequestedProcedureCodeSequence ScheduledProtocolCodeSequence "
        "ScheduledProcedureStepDescription PerformedProcedureStepDescription "
        "FrameAnatomySequence FrameLaterality",
    ),
    "Patient characteristics (C.7.2.2 Patient Study, E.3.6)": (
        "Retain Patient Characteristics: sex, age, size and weight change the reading "
        "of an image and, without name, dates of birth or identifiers, name nobody",
        "PatientSex PatientAge PatientSize PatientWeight",
    ),
    "Equipment class (C.7.5.1 General Equipment)": (
        "the make and model explain the look of an image (equipment class is teaching "
        "information); serial numbers, station and institution names are not listed",
        "Manufacturer ManufacturerModelName",
    ),
    "Image pixel description (C.7.6.3 Image Pixel, C.7.6.6 Multi-frame, C.7.6.16.2)": (
        "how to decode and display the pixels: sizes, bit depths, photometric "
        "interpretation, palettes and frame timing say nothing about the patient",
        "SamplesPerPixel PhotometricInterpretation Rows Columns BitsAllocated BitsStored "
        "HighBit PixelRepresentation PlanarConfiguration PixelAspectRatio "
        "SmallestImagePixelValue LargestImagePixelValue SmallestPixelValueInSeries "
        "LargestPixelValueInSeries PixelPaddingValue PixelPaddingRangeLimit "
        "RedPaletteColorLookupTableDescriptor GreenPaletteColorLookupTableDescriptor "
        "BluePaletteColorLookupTableDescriptor AlphaPaletteColorLookupTableDescriptor "
        "RedPaletteColorLookupTableData GreenPaletteColorLookupTableData "
        "BluePaletteColorLookupTableData AlphaPaletteColorLookupTableData "
        "SegmentedRedPaletteColorLookupTableData SegmentedGreenPaletteColorLookupTableData "
        "SegmentedBluePaletteColorLookupTableData PaletteColorLookupTableUID ICCProfile "
        "ColorSpace PixelData FloatPixelData DoubleFloatPixelData ExtendedOffsetTable "
        "ExtendedOffsetTableLengths NumberOfFrames FrameIncrementPointer FrameTime "
        "FrameTimeVector StartTrim StopTrim RecommendedDisplayFrameRate CineRate FrameDelay "
        "ActualFrameDuration PixelIntensityRelationship PixelIntensityRelationshipSign "
        "PresentationLUTShape",
    ),
    "Geometry and orientation (C.7.6.2 Image Plane, C.7.4.1 Frame of Reference, C.8.x)": (
        "where the pixels are in the patient and how large they are: what measurement, "
        "multiplanar views and the viewer's ruler need; the Frame of Reference UID is "
        "replaced",
        "ImagePositionPatient ImageOrientationPatient PixelSpacing SliceThickness "
        "SliceLocation SpacingBetweenSlices FrameOfReferenceUID PatientPosition "
        "PatientOrientation ImagerPixelSpacing NominalScannedPixelSpacing "
        "PixelSpacingCalibrationType EstimatedRadiographicMagnificationFactor "
        "DistanceSourceToDetector DistanceSourceToPatient DistanceSourceToEntrance "
        "TableHeight GantryDetectorTilt DataCollectionDiameter ReconstructionDiameter "
        "ReconstructionTargetCenterPatient DataCollectionCenterPatient FieldOfViewDimensions "
        "FieldOfViewShape PositionerPrimaryAngle PositionerSecondaryAngle RotationDirection "
        "SpatialResolution PixelOriginInterpretation",
    ),
    "Acquisition parameters (C.8.2.1 CT, C.8.3.1 MR, C.8.11 DX, C.7.6.4 Contrast/Bolus)": (
        "how the image was made (technique is teaching content): exposure, sequence "
        "timing, field strength, kernels and contrast; the agent's name is cleaned",
        "KVP ExposureTime XRayTubeCurrent Exposure ExposureInuAs ExposureInmAs "
        "XRayTubeCurrentInmA XRayTubeCurrentInuA FilterType ConvolutionKernel "
        "GeneratorPower FocalSpots CTDIvol RevolutionTime SingleCollimationWidth "
        "TotalCollimationWidth SpiralPitchFactor TableSpeed TableFeedPerRotation "
        "ExposureModulationType ScanOptions ScanningSequence SequenceVariant SequenceName "
        "MRAcquisitionType RepetitionTime EchoTime InversionTime FlipAngle "
        "MagneticFieldStrength EchoTrainLength EchoNumbers NumberOfAverages "
        "ImagingFrequency ImagedNucleus SAR dBdt PercentSampling PercentPhaseFieldOfView "
        "PixelBandwidth AcquisitionMatrix InPlanePhaseEncodingDirection "
        "VariableFlipAngleFlag NumberOfPhaseEncodingSteps TriggerTime NominalInterval "
        "HeartRate CardiacNumberOfImages DiffusionBValue DiffusionGradientOrientation "
        "DiffusionDirectionality TemporalPositionIdentifier NumberOfTemporalPositions "
        "TemporalResolution Grid AnodeTargetMaterial BodyPartThickness CompressionForce "
        "ExposureControlMode RelativeXRayExposure Sensitivity ExposureIndex "
        "TargetExposureIndex DeviationIndex ImageAndFluoroscopyAreaDoseProduct "
        "EntranceDoseInmGy OrganDose AcquisitionDeviceProcessingDescription "
        "ContrastBolusAgent ContrastBolusAgentSequence ContrastBolusRoute "
        "ContrastBolusAdministrationRouteSequence ContrastBolusVolume ContrastBolusTotalDose "
        "ContrastBolusStartTime ContrastBolusStopTime ContrastFlowRate ContrastFlowDuration "
        "ContrastBolusIngredient ContrastBolusIngredientConcentration",
    ),
    "Nuclear medicine and PET (C.8.9.1 PET Series/Image, C.8.9.2 Isotope)": (
        "units, decay correction and the radiopharmaceutical explain the values in a "
        "PET or NM image; its start date-time is shifted",
        "Units DecayCorrection CorrectedImage CountsSource ReconstructionMethod SeriesType "
        "FrameReferenceTime DecayFactor DoseCalibrationFactor ScatterFractionFactor "
        "RadiopharmaceuticalInformationSequence Radiopharmaceutical RadionuclideCodeSequence "
        "RadiopharmaceuticalStartTime RadiopharmaceuticalStartDateTime RadionuclideTotalDose "
        "RadionuclideHalfLife RadionuclidePositronFraction",
    ),
    "NM multi-frame vectors and detectors (C.8.4.9 NM Image, C.8.4.10 NM Detector)": (
        "which energy window, detector, phase or rotation each frame belongs to, which "
        "the Frame Increment Pointer names: the frame layout, not the patient",
        "EnergyWindowVector DetectorVector PhaseVector RotationVector RRIntervalVector "
        "TimeSlotVector SliceVector AngularViewVector TimeSliceVector NumberOfEnergyWindows "
        "NumberOfDetectors NumberOfPhases NumberOfRotations NumberOfRRIntervals "
        "NumberOfTimeSlots NumberOfSlices NumberOfTimeSlices EnergyWindowInformationSequence "
        "EnergyWindowRangeSequence EnergyWindowLowerLimit EnergyWindowUpperLimit "
        "DetectorInformationSequence CollimatorType FocalDistance ZoomFactor "
        "RotationInformationSequence StartAngle AngularStep ScanArc NumberOfFramesInRotation "
        "TypeOfDetectorMotion",
    ),
    "Segmentation (C.8.20.2 Segmentation Image, C.8.20.3 Segment Description)": (
        "segments are coded anatomy and findings with numbers and display colours; the "
        "segment labels are cleaned",
        "SegmentSequence SegmentNumber SegmentLabel SegmentAlgorithmType SegmentAlgorithmName "
        "SegmentationType SegmentedPropertyCategoryCodeSequence "
        "SegmentedPropertyTypeCodeSequence SegmentedPropertyTypeModifierCodeSequence "
        "SegmentIdentificationSequence RecommendedDisplayCIELabValue "
        "RecommendedDisplayGrayscaleValue MaximumFractionalValue SegmentationFractionalType "
        "SegmentsOverlap",
    ),
    "RT plan geometry (C.8.8.9 RT General Plan, C.8.8.13 Fraction Scheme, C.8.8.14 Beams)": (
        "beam geometry, energies, meterset and fractionation are numbers and enumerated "
        "codes of the treatment technique; plan labels are cleaned by E.1-1, the treatment "
        "machine name, operators and approvers are not listed",
        "BeamSequence BeamNumber BeamType RadiationType PrimaryDosimeterUnit "
        "SourceAxisDistance BeamLimitingDeviceSequence RTBeamLimitingDeviceType "
        "NumberOfLeafJawPairs LeafPositionBoundaries ControlPointSequence ControlPointIndex "
        "NominalBeamEnergy DoseRateSet BeamLimitingDevicePositionSequence LeafJawPositions "
        "GantryAngle GantryRotationDirection BeamLimitingDeviceAngle "
        "BeamLimitingDeviceRotationDirection PatientSupportAngle "
        "PatientSupportRotationDirection TableTopEccentricAngle "
        "TableTopEccentricRotationDirection TableTopVerticalPosition "
        "TableTopLongitudinalPosition TableTopLateralPosition IsocenterPosition "
        "SourceToSurfaceDistance CumulativeMetersetWeight FinalCumulativeMetersetWeight "
        "NumberOfControlPoints NumberOfWedges NumberOfCompensators NumberOfBoli "
        "NumberOfBlocks TreatmentDeliveryType ReferencedPatientSetupNumber ApprovalStatus "
        "RTPlanGeometry PlanIntent FractionGroupSequence FractionGroupNumber "
        "NumberOfFractionsPlanned NumberOfBeams NumberOfBrachyApplicationSetups "
        "ReferencedBeamSequence ReferencedBeamNumber BeamMeterset BeamDose "
        "BeamDoseSpecificationPoint PatientSetupSequence PatientSetupNumber "
        "ReferencedStructureSetSequence ToleranceTableSequence ToleranceTableNumber "
        "ReferencedToleranceTableNumber ReferencedDoseReferenceNumber DoseReferenceSequence "
        "DoseReferenceNumber DoseReferenceStructureType DoseReferenceType "
        "DoseReferencePointCoordinates "
        "TargetPrescriptionDose WedgeSequence WedgeNumber WedgeType WedgeAngle WedgeFactor "
        "WedgeOrientation WedgePosition WedgePositionSequence ReferencedWedgeNumber",
    ),
    "Waveforms (C.10.9 Waveform)": (
        "the signal description (channels, sampling, filters, bit depths) and the samples "
        "themselves, as pixel description and pixels are for an image",
        "WaveformSequence MultiplexGroupTimeOffset TriggerTimeOffset WaveformOriginality "
        "NumberOfWaveformChannels NumberOfWaveformSamples SamplingFrequency "
        "ChannelDefinitionSequence WaveformChannelNumber ChannelStatus ChannelSourceSequence "
        "ChannelSourceModifiersSequence ChannelSensitivity ChannelSensitivityUnitsSequence "
        "ChannelSensitivityCorrectionFactor ChannelBaseline ChannelTimeSkew ChannelSampleSkew "
        "ChannelOffset WaveformBitsStored FilterLowFrequency FilterHighFrequency "
        "NotchFilterFrequency NotchFilterBandwidth WaveformBitsAllocated "
        "WaveformSampleInterpretation WaveformPaddingValue WaveformData ChannelMinimumValue "
        "ChannelMaximumValue",
    ),
    "Ultrasound regions and staging (C.8.5.5 US Region Calibration, C.8.5.6 US Image)": (
        "where each region of an ultrasound image is and its physical units, which "
        "measuring on it needs; stage and view numbers of stress echo",
        "SequenceOfUltrasoundRegions RegionSpatialFormat RegionDataType RegionFlags "
        "RegionLocationMinX0 RegionLocationMinY0 RegionLocationMaxX1 RegionLocationMaxY1 "
        "ReferencePixelX0 ReferencePixelY0 PhysicalUnitsXDirection PhysicalUnitsYDirection "
        "ReferencePixelPhysicalValueX ReferencePixelPhysicalValueY PhysicalDeltaX "
        "PhysicalDeltaY TransducerFrequency PulseRepetitionFrequency DopplerCorrectionAngle "
        "SteeringAngle NumberOfStages NumberOfViewsInStage StageNumber ViewNumber",
    ),
    "RT Dose (C.8.8.3)": (
        "the dose grid's units, scaling and frame offsets are needed to show it over "
        "the planning images",
        "DoseUnits DoseType DoseSummationType GridFrameOffsetVector DoseGridScaling "
        "TissueHeterogeneityCorrection ReferencedRTPlanSequence",
    ),
    "Modality and VOI LUTs, windows (C.11.1, C.11.2, C.7.6.16.2.9)": (
        "how pixel values become Hounsfield units and grey levels; the explanations are "
        "labels such as BRAIN or LUNG, cleaned by Clean Descriptors",
        "WindowCenter WindowWidth WindowCenterWidthExplanation VOILUTFunction VOILUTSequence "
        "LUTDescriptor LUTExplanation LUTData ModalityLUTSequence ModalityLUTType "
        "RescaleIntercept RescaleSlope RescaleType PresentationLUTSequence "
        "SoftcopyVOILUTSequence RealWorldValueMappingSequence LUTLabel "
        "RealWorldValueFirstValueMapped RealWorldValueLastValueMapped RealWorldValueSlope "
        "RealWorldValueIntercept RealWorldValueLUTData QuantityDefinitionSequence",
    ),
    "Enhanced multi-frame functional groups (C.7.6.16, C.8.15.3, C.8.13.5)": (
        "the per-frame and shared macros carry the same geometry, timing, windows and "
        "acquisition facts as the single-frame attributes above, frame by frame; their "
        "date-times are shifted",
        "SharedFunctionalGroupsSequence PerFrameFunctionalGroupsSequence "
        "PixelMeasuresSequence PlanePositionSequence PlaneOrientationSequence "
        "FrameContentSequence FrameAcquisitionNumber FrameReferenceDateTime "
        "FrameAcquisitionDateTime FrameAcquisitionDuration CardiacCyclePosition "
        "RespiratoryCyclePosition DimensionIndexValues TemporalPositionIndex StackID "
        "InStackPositionNumber FrameVOILUTSequence PixelValueTransformationSequence "
        "CTImageFrameTypeSequence MRImageFrameTypeSequence FrameType PixelPresentation "
        "VolumetricProperties VolumeBasedCalculationTechnique CTAcquisitionTypeSequence "
        "AcquisitionType TubeAngle ConstantVolumeFlag FluoroscopyFlag "
        "CTAcquisitionDetailsSequence CTTableDynamicsSequence CTGeometrySequence "
        "CTReconstructionSequence ReconstructionAlgorithm CTExposureSequence "
        "CTXRayDetailsSequence CTPositionSequence IrradiationEventUID "
        "MRTimingAndRelatedParametersSequence MRFOVGeometrySequence MREchoSequence "
        "EffectiveEchoTime MRModifierSequence MRImagingModifierSequence MRDiffusionSequence "
        "DiffusionBMatrixSequence DiffusionGradientDirectionSequence MRAveragesSequence "
        "MRVelocityEncodingSequence MRAcquisitionFrequencyEncodingSteps "
        "MRAcquisitionPhaseEncodingStepsInPlane ParallelReductionFactorInPlane "
        "SpecificAbsorptionRateSequence CardiacSynchronizationSequence "
        "RespiratorySynchronizationSequence ContrastBolusUsageSequence "
        "IrradiationEventIdentificationSequence PlanePositionVolumeSequence "
        "PlaneOrientationVolumeSequence TemporalPositionSequence ImageDataTypeSequence "
        "DataType",
    ),
    "Multi-frame Dimension (C.7.6.17)": (
        "how the frames are ordered into stacks and phases; the labels are cleaned",
        "DimensionOrganizationSequence DimensionOrganizationUID DimensionIndexSequence "
        "DimensionIndexPointer FunctionalGroupPointer DimensionDescriptionLabel "
        "DimensionOrganizationType",
    ),
    "SR coded content (C.17.2 SR Document General, C.17.3 SR Document Content, C.18)": (
        "Clean Structured Content: the tree's structure, coded concepts, numbers, units, "
        "spatial coordinates and references are teaching content; text values are "
        "cleaned, person names dummied and dates shifted by Table E.1-1",
        "ValueType ConceptNameCodeSequence ConceptCodeSequence RelationshipType "
        "ContentSequence ContinuityOfContent ContentTemplateSequence TemplateIdentifier "
        "MeasuredValueSequence NumericValue FloatingPointValue RationalNumeratorValue "
        "RationalDenominatorValue MeasurementUnitsCodeSequence "
        "NumericValueQualifierCodeSequence GraphicData GraphicType "
        "ReferencedContentItemIdentifier ReferencedFrameOfReferenceUID "
        "ReferencedWaveformChannels ReferencedTimeOffsets ReferencedDateTime "
        "ReferencedSamplePositions "
        "TemporalRangeType ReferencedFrameNumbers FiducialUID TextValue DateTime Date Time "
        "UID PersonName ObservationDateTime ObservationUID CompletionFlag VerificationFlag "
        "PreliminaryFlag CurrentRequestedProcedureEvidenceSequence "
        "PertinentOtherEvidenceSequence AcquisitionContextSequence",
    ),
    "Presentation states (C.10.4 Displayed Area, C.10.5 Graphic Annotation, C.11.x)": (
        "how an image is to be shown and the teaching marks drawn on it; annotation "
        "text and labels are cleaned (Clean Graphics), creator names are not listed",
        "PresentationCreationDate PresentationCreationTime ContentLabel ContentDescription "
        "GraphicAnnotationSequence GraphicLayer GraphicLayerSequence GraphicLayerOrder "
        "GraphicLayerRecommendedDisplayGrayscaleValue "
        "GraphicLayerRecommendedDisplayCIELabValue GraphicLayerDescription "
        "GraphicObjectSequence TextObjectSequence UnformattedTextValue "
        "BoundingBoxTopLeftHandCorner BoundingBoxBottomRightHandCorner "
        "BoundingBoxAnnotationUnits BoundingBoxTextHorizontalJustification AnchorPoint "
        "AnchorPointAnnotationUnits AnchorPointVisibility GraphicAnnotationUnits "
        "GraphicDimensions NumberOfGraphicPoints GraphicFilled "
        "DisplayedAreaSelectionSequence DisplayedAreaTopLeftHandCorner "
        "DisplayedAreaBottomRightHandCorner PresentationSizeMode PresentationPixelSpacing "
        "PresentationPixelAspectRatio PresentationPixelMagnificationRatio ImageRotation "
        "ImageHorizontalFlip ShutterShape ShutterLeftVerticalEdge ShutterRightVerticalEdge "
        "ShutterUpperHorizontalEdge ShutterLowerHorizontalEdge CenterOfCircularShutter "
        "RadiusOfCircularShutter VerticesOfThePolygonalShutter ShutterPresentationValue",
    ),
}

#: Allowed only inside a sequence item, never at the top level of an object: a coded
#: concept's parts and SR content item values mean something only in their item.
NESTED_ONLY: Final = frozenset(
    _tags(
        "CodeValue CodingSchemeDesignator CodingSchemeVersion CodeMeaning LongCodeValue "
        "URNCodeValue MappingResource MappingResourceUID ContextGroupVersion "
        "ContextGroupLocalVersion ContextIdentifier ContextUID ContextGroupExtensionFlag "
        "ContextGroupExtensionCreatorUID RelationshipType TextValue DateTime Date Time UID "
        "PersonName NumericValue ReferencedContentItemIdentifier"
    )
)


def _allowed() -> dict[int, str]:
    allowed: dict[int, str] = {}
    for group, (_, keywords) in _GROUPS.items():
        allowed.update(dict.fromkeys(_tags(keywords), group))
    return allowed


#: tag -> the allow-list group (and so the reason) that lets it through.
ALLOWED: Final[dict[int, str]] = _allowed()

#: Reasons by group, for reviewers and for the tests.
REASONS: Final[dict[str, str]] = {group: reason for group, (reason, _) in _GROUPS.items()}

#: Conditional attributes (Type 1C/2C) whose condition is the presence or value of an
#: attribute the profile removes or empties: removed with it, never dummied, since a
#: value left behind violates the condition (dciodvfy: "may not be present").
#: dependent tag -> the tag that conditions it.
CONDITIONED: Final[dict[int, int]] = {
    0x00102298: 0x00102297,  # Responsible Person Role <- Responsible Person (C.7.1.1)
    0x00100035: 0x00100033,  # Patient's Alternative Calendar <- Birth Date in Alt. Calendar
}

# --- 2. Table E.1-1 --------------------------------------------------------------------------

#: Rules Table E.1-1 does not give but the claimed options need (E.1.1, E.3.3):
#: free text of SR content items and of graphic annotations is cleaned.
EXTRA_ACTIONS: Final[dict[int, Action]] = {
    0x0040A160: Action.CLEAN,  # Text Value (Clean Structured Content)
    0x00700006: Action.CLEAN,  # Unformatted Text Value (Clean Graphics)
    # labels and explanations on the allow-list that E.1-1 does not list: typed by
    # people, so cleaned like any descriptor (Clean Descriptors, E.3.5)
    **dict.fromkeys(
        _tags(
            "WindowCenterWidthExplanation LUTExplanation LUTLabel DimensionDescriptionLabel "
            "ContentDescription GraphicLayerDescription SegmentLabel ContrastBolusRoute"
        ),
        Action.CLEAN,
    ),
}


def _resolve(row: dict[str, str], vr_is_sequence: bool) -> Action:
    action = row["basicProfile"]
    source = "basicProfile"
    for option in OPTIONS:
        if row.get(option):
            action, source = row[option], option
    if action == "C":
        if source == "rtnLongModifDatesOpt":
            return Action.SHIFT
        return Action.RECURSE if vr_is_sequence else Action.CLEAN
    if action == "K":
        return Action.RECURSE if vr_is_sequence else Action.KEEP
    if action == "U":
        return Action.UID
    if action == "X/Z/U*":
        # a reference sequence: kept, the UIDs inside are replaced (E.1-1 note)
        return Action.RECURSE
    # X/Z, X/D, Z/D, X/Z/D (E.1-1 note): the least that the IOD allows; the walker
    # lifts REMOVE to EMPTY for a Type 2 and to DUMMY for a Type 1 attribute
    choices = action.split("/")
    if "X" in choices:
        return Action.REMOVE
    if "Z" in choices:
        return Action.EMPTY
    return Action.RECURSE if vr_is_sequence else Action.DUMMY


def _load() -> tuple[dict[int, Action], dict[int, str]]:
    from pydicom.datadict import dictionary_VR

    text = (DATA / "ps3.15-table-e.1-1.json").read_text("utf-8")
    actions: dict[int, Action] = {}
    names: dict[int, str] = {}
    for row in json.loads(text):
        tag_text = row["tag"].strip("()").replace(",", "")
        if "X" in tag_text or "G" in tag_text:
            continue  # repeating groups and private tags have rules of their own
        tag = int(tag_text, 16)
        try:
            is_sq = dictionary_VR(tag) == "SQ"
        except KeyError:
            is_sq = False
        actions[tag] = _resolve(row, is_sq)
        names[tag] = row["name"].split("\n")[0]
    actions.update(EXTRA_ACTIONS)
    return actions, names


#: tag -> action, for every fixed tag of Table E.1-1.
ACTIONS, NAMES = _load()

# --- 3. the IODs' Types ----------------------------------------------------------------------

#: One level of an IOD's attribute tree: tag -> (requirement, the level below it).
#: Requirement 1 (Type 1 or 1C: a value), 2 (Type 2 or 2C: present, may be empty) or
#: 0 (optional here, but something required lies below).
TypeNode = dict[int, tuple[int, "TypeNode"]]
_LEVEL: Final = {"1": 1, "1C": 1, "2": 2, "2C": 2}


@functools.lru_cache(maxsize=1)
def _iod_tables() -> dict[str, dict[str, object]]:
    with gzip.open(DATA / "iod-types.json.gz", "rt", encoding="utf-8") as handle:
        data: dict[str, dict[str, object]] = json.load(handle)
    return data


def _merge(node: TypeNode, path: list[int], level: int) -> None:
    for depth, tag in enumerate(path):
        last = depth == len(path) - 1
        old = node.get(tag)
        if old is None:
            old = (level if last else 0, {})
            node[tag] = old
        elif last and (old[0] == 0 or level < old[0]):
            old = (level, old[1])  # the most demanding Type of all the modules wins
            node[tag] = old
        node = old[1]


@functools.lru_cache(maxsize=64)
def _iod_tree(iod: str | None) -> TypeNode:
    tables = _iod_tables()
    modules: dict[str, dict[str, str]] = tables["modules"]  # type: ignore[assignment]
    iods: dict[str, list[str]] = tables["iods"]  # type: ignore[assignment]
    names = iods.get(iod, []) if iod is not None else sorted({m for v in iods.values() for m in v})
    root: TypeNode = {}
    for module in names:
        for path, kind in modules.get(module, {}).items():
            _merge(root, [int(part, 16) for part in path.split("/")], _LEVEL[kind])
    return root


def iod_types(sop_class_uid: str) -> TypeNode:
    """The Type tree of the IOD of ``sop_class_uid`` (PS3.3 A, via PS3.4 B.5).

    A class the tables do not know gets the most demanding Type of every IOD's
    modules: a dummy value an IOD did not need is harmless, a missing one is not.
    """
    classes: dict[str, str] = _iod_tables()["sop_classes"]  # type: ignore[assignment]
    return _iod_tree(classes.get(sop_class_uid))
